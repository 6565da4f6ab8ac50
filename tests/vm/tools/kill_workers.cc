// kill_workers COUNT INTERVAL_MS: the killer of the failover scenarios. SIGKILLs a
// worker picked at random among the live cfsupervisor-worker processes, COUNT times,
// INTERVAL_MS apart. A shell loop cannot keep 10 ms under TCG (each iteration forks
// several processes), hence this. Waits (and does not count) while no worker is
// alive, but fails if none appears for 30 s. Prints how many it killed and how long
// that took.
#include <dirent.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

bool sigkill_pending(const char* pid) {
    std::ifstream status(std::string("/proc/") + pid + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("ShdPnd:", 0) != 0 && line.rfind("SigPnd:", 0) != 0) continue;
        const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
        if (mask & (1ULL << (SIGKILL - 1))) return true;
    }
    return false;
}

// Live (not zombie) processes whose comm is the worker's (worker/main.cc sets it).
std::vector<pid_t> live_workers() {
    std::vector<pid_t> pids;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return pids;
    while (const dirent* e = ::readdir(proc)) {
        const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
        if (pid <= 0) continue;
        std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
        std::string line;
        if (!std::getline(stat, line)) continue;
        const auto open = line.find('('), close = line.rfind(')');
        if (open == std::string::npos || close == std::string::npos || close + 2 >= line.size()) continue;
        if (line.compare(open + 1, close - open - 1, "cfs-worker") != 0) continue;
        if (line[close + 2] == 'Z') continue;
        // Not one already dying (a worker's exit takes a while: its namespaces are
        // torn down), so that every kill counted is one more death: neither exiting
        // (PF_EXITING in the flags, the 9th field) nor with a SIGKILL pending.
        std::istringstream fields(line.substr(close + 2));
        std::string field;
        unsigned long flags = 0;
        for (int i = 3; i <= 9 && fields >> field; ++i)
            if (i == 9) flags = std::stoul(field);
        constexpr unsigned long kPfExiting = 0x4;
        if (flags & kPfExiting) continue;
        if (sigkill_pending(e->d_name)) continue;
        pids.push_back(pid);
    }
    ::closedir(proc);
    return pids;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: kill_workers COUNT INTERVAL_MS\n");
        return 2;
    }
    const int count = std::atoi(argv[1]);
    const auto interval = std::chrono::milliseconds(std::atoi(argv[2]));
    std::mt19937 rng(static_cast<unsigned>(::getpid()));
    const auto start = std::chrono::steady_clock::now();
    int killed = 0;
    auto last_seen = start;
    while (killed < count) {
        const auto pids = live_workers();
        if (pids.empty()) {
            if (std::chrono::steady_clock::now() - last_seen > std::chrono::seconds(30)) {
                std::fprintf(stderr, "kill_workers: no worker alive for 30 s after %d kills\n", killed);
                return 1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
        }
        last_seen = std::chrono::steady_clock::now();
        const pid_t victim = pids[std::uniform_int_distribution<std::size_t>(0, pids.size() - 1)(rng)];
        if (::kill(victim, SIGKILL) == 0) ++killed;
        std::this_thread::sleep_for(interval);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("killed %d workers in %.2f s\n", killed, seconds);
    return 0;
}
