// The installed supervisor binary while it starts: what a signal does before its
// event loop exists (main.cc's run()).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "common/unique_fd.h"

using cfs::unique_fd;

namespace {

// The syscall `pid` is blocked in (/proc/PID/syscall's first field), -1 if running.
long blocked_syscall(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/syscall");
    std::string first;
    if (!(in >> first) || first == "running") return -1;
    try {
        return std::stol(first);
    } catch (...) {
        return -1;
    }
}

// In the child: the supervisor exactly as a service manager would start it, with a
// clean signal state, except that its stderr is `err` and it cannot find a journal.
[[noreturn]] void exec_supervisor(int err) {
    ::dup2(err, STDERR_FILENO);
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    for (const char* v : {"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "JOURNAL_STREAM", "WATCHDOG_USEC"})
        ::unsetenv(v);
    // On a host booted with systemd the supervisor would log to the journal, not to
    // the pipe this test fills.
    struct stat st {};
    if (::stat("/run/systemd/system", &st) == 0 &&
        (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
         ::mount("tmpfs", "/run/systemd", "tmpfs", 0, nullptr) != 0))
        ::_exit(120);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGHUP, SIG_DFL);
    const char* argv[] = {CFS_SUPERVISOR_BIN, "run", "--config", "/nonexistent/cfs-start-test.toml", nullptr};
    ::execv(argv[0], const_cast<char* const*>(argv));
    ::_exit(121);
}

}  // namespace

// The start's first log line (here: the config file cannot be opened) is written
// into a full pipe, which holds the supervisor inside its start for as long as the
// test wants: a SIGHUP sent then must not end it.
TEST_CASE("supervisor start: a SIGHUP before the event loop does not end the process") {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    unique_fd out(p[0]), in(p[1]);
    (void)::fcntl(in.get(), F_SETPIPE_SZ, 4096);
    REQUIRE(::fcntl(in.get(), F_SETFL, O_NONBLOCK) == 0);
    const std::string filler(4096, 'x');
    while (::write(in.get(), filler.data(), filler.size()) > 0) {
    }
    REQUIRE(errno == EAGAIN);
    REQUIRE(::fcntl(in.get(), F_SETFL, 0) == 0);

    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) exec_supervisor(in.get());
    in.reset();

    constexpr long kWrite = 1;  // x86_64
    bool blocked = false;
    for (int i = 0; i < 1000 && !blocked; ++i) {
        if (::waitpid(child, nullptr, WNOHANG) != 0) break;
        blocked = blocked_syscall(child) == kWrite;
        if (!blocked) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!blocked) {
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);
        FAIL("the supervisor never blocked writing its first log line to the full pipe");
    }
    REQUIRE(::kill(child, SIGHUP) == 0);
    // Time for a default action to end it, were SIGHUP not blocked.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::string logged;
    char buf[4096];
    for (ssize_t n; (n = ::read(out.get(), buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        REQUIRE(n > 0);
        logged.append(buf, static_cast<std::size_t>(n));
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    INFO("what it logged: " << logged.substr(std::min(logged.size(), filler.size())));
    CHECK_FALSE(WIFSIGNALED(status));
    REQUIRE(WIFEXITED(status));
    // 78 (EX_CONFIG): it went on to the end of its start and refused the config.
    CHECK(WEXITSTATUS(status) == 78);
    CHECK(logged.find("cfs-start-test.toml") != std::string::npos);
}
