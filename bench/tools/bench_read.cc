// cfs-bench-read: the reads the benchmark (bench/guest/bench.sh) times inside the
// test VM, one process per workload so a shell's fork/exec never enters a figure.
// Prints one JSON object of raw figures; bench/report.py turns them into rates and
// ratios.
//
//   cfs-bench-read seq FILE             whole file, 1 MiB reads
//   cfs-bench-read seq-direct FILE      whole file, 4 MiB reads with direct I/O:
//                                       the disk, without the page cache
//   cfs-bench-read rand FILE COUNT SEED [SECONDS]
//                                       COUNT 4 KiB reads at random 4 KiB-aligned
//                                       offsets (or fewer, if SECONDS pass first);
//                                       latency percentiles and the longest read
//   cfs-bench-read rand-kills FILE SEED KILL_TIMES
//                                       4 KiB reads at random offsets until SIGTERM;
//                                       then, for each time in KILL_TIMES (one per
//                                       line, as `kill` printed them), the length
//                                       of the longest read that ended in the
//                                       500 ms after it
//   cfs-bench-read heartbeat CPU KILL_TIMES
//                                       a real-time thread on vCPU CPU wakes
//                                       every 1 ms until SIGTERM; then, for each
//                                       kill, the longest time between two wakes
//                                       that ended in the 500 ms after it
//   cfs-bench-read kill PID             SIGKILL to PID; prints the CLOCK_MONOTONIC
//                                       ns of the moment before it, then sleeps
//                                       1 s before it exits: the shell that ran
//                                       it forks its next process only after the
//                                       failover (a fork and exec right after the
//                                       kill took up to 5 ms of a vCPU in it,
//                                       traced in the test VM)
//   cfs-bench-read tree DIR             every regular file beneath DIR, in
//                                       directory order, 64 KiB reads
//   cfs-bench-read copy FILE DEST pread|willneed|direct CHUNK_KIB [MAX_MIB]
//                                       FILE (its first MAX_MIB MiB) copied into
//                                       DEST (new, O_DIRECT) in CHUNK_KIB pwrites,
//                                       as a worker fills a cache file: from a
//                                       buffer filled by pread through the page
//                                       cache, the same with the next chunk asked
//                                       for (POSIX_FADV_WILLNEED) before each
//                                       write, or by pread with direct I/O (the
//                                       worker's way where the filesystem takes
//                                       it). The limit of a worker's copy.
// Exit status 1 on any read error (named on stderr): a benchmark that hit an error
// measured nothing.
#include <fcntl.h>
#include <sched.h>
#include <ftw.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <charconv>
#include <climits>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <csignal>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

[[noreturn]] void die(const char* what, const char* path) {
    std::fprintf(stderr, "cfs-bench-read: %s%s%s: %s\n", what, *path ? " " : "", path, std::strerror(errno));
    std::exit(1);
}

// Reads fd to its end; returns the bytes read.
unsigned long long drain(int fd, const char* path, std::vector<char>& buffer) {
    unsigned long long total = 0;
    for (;;) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            die("reading", path);
        }
        if (n == 0) return total;
        total += static_cast<unsigned long long>(n);
    }
}

int sequential(const char* path) {
    std::vector<char> buffer(1 << 20);
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("opening", path);
    const auto t0 = Clock::now();
    const auto bytes = drain(fd, path, buffer);
    const double s = seconds_since(t0);
    ::close(fd);
    std::printf("{\"bytes\":%llu,\"seconds\":%.6f}\n", bytes, s);
    return 0;
}

// A buffer as the worker's copy buffer is (worker/aligned_bytes.h, allocate_huge):
// in huge pages where the kernel has them. Freed with std::free.
void* huge_buffer(std::size_t bytes, const char* what) {
    constexpr std::size_t kHugePage = std::size_t{2} << 20;
    void* buffer = nullptr;
    if (::posix_memalign(&buffer, kHugePage, (bytes + kHugePage - 1) / kHugePage * kHugePage) != 0)
        die("allocating for", what);
    (void)::madvise(buffer, bytes, MADV_HUGEPAGE);
    return buffer;
}

// As the worker reads a blob (worker/local_backend.cc) into its copy buffer.
int sequential_direct(const char* path) {
    constexpr std::size_t kPiece = std::size_t{4} << 20;
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd < 0) die("opening", path);
    void* buffer = huge_buffer(kPiece, path);
    unsigned long long bytes = 0;
    const auto t0 = Clock::now();
    for (;;) {
        const ssize_t n = ::pread(fd, buffer, kPiece, static_cast<off_t>(bytes));
        if (n < 0) {
            if (errno == EINTR) continue;
            die("reading", path);
        }
        bytes += static_cast<unsigned long long>(n);
        if (static_cast<std::size_t>(n) < kPiece) break;
    }
    const double s = seconds_since(t0);
    ::close(fd);
    std::free(buffer);
    std::printf("{\"bytes\":%llu,\"seconds\":%.6f}\n", bytes, s);
    return 0;
}

// 4 KiB blocks of a file picked at random, reproducibly from a seed.
class RandomBlocks {
public:
    RandomBlocks(const char* path, unsigned seed) : path_(path), rng_(seed) {
        fd_ = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) die("opening", path);
        struct stat st {};
        if (::fstat(fd_, &st) < 0) die("stat of", path);
        const auto blocks = static_cast<unsigned long long>(st.st_size) / 4096;
        if (blocks == 0) {
            std::fprintf(stderr, "cfs-bench-read: %s is smaller than 4 KiB\n", path);
            std::exit(1);
        }
        pick_ = std::uniform_int_distribution<unsigned long long>(0, blocks - 1);
    }
    RandomBlocks(const RandomBlocks&) = delete;
    RandomBlocks& operator=(const RandomBlocks&) = delete;
    ~RandomBlocks() { ::close(fd_); }
    // One read; false if a signal cut it short (nothing read).
    bool read_one() {
        if (::pread(fd_, block_, sizeof block_, static_cast<off_t>(pick_(rng_) * 4096)) >= 0) return true;
        if (errno != EINTR) die("reading", path_);
        return false;
    }

private:
    const char* path_;
    int fd_ = -1;
    std::mt19937_64 rng_;
    std::uniform_int_distribution<unsigned long long> pick_;
    char block_[4096];
};

int random_reads(const char* path, unsigned count, unsigned seed, unsigned max_seconds) {
    RandomBlocks blocks(path, seed);
    std::vector<double> latency_us;
    latency_us.reserve(count);
    const auto t0 = Clock::now();
    for (unsigned i = 0; i < count; ++i) {
        if (max_seconds > 0 && seconds_since(t0) >= max_seconds) break;
        const auto t = Clock::now();
        if (blocks.read_one()) latency_us.push_back(seconds_since(t) * 1e6);
    }
    const double s = seconds_since(t0);
    if (latency_us.empty()) {
        std::fprintf(stderr, "cfs-bench-read: no read finished within the time given\n");
        return 1;
    }
    std::sort(latency_us.begin(), latency_us.end());
    auto pct = [&](double p) { return latency_us[static_cast<std::size_t>(p * (latency_us.size() - 1))]; };
    const auto done = static_cast<unsigned>(latency_us.size());
    std::printf("{\"reads\":%u,\"bytes\":%llu,\"seconds\":%.6f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
                done, 4096ULL * done, s, pct(0.5), pct(0.99), latency_us.back());
    return 0;
}

std::uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000U + static_cast<std::uint64_t>(ts.tv_nsec);
}

int kill_now(pid_t pid) {
    const std::uint64_t at = monotonic_ns();
    if (::kill(pid, SIGKILL) < 0) {
        std::fprintf(stderr, "cfs-bench-read: kill %d: %s\n", pid, std::strerror(errno));
        return 1;
    }
    std::printf("%llu\n", static_cast<unsigned long long>(at));
    std::fflush(stdout);
    timespec settle{1, 0};
    while (::nanosleep(&settle, &settle) < 0 && errno == EINTR) {
    }
    return 0;
}

volatile std::sig_atomic_t g_stop = 0;

// The benchmark's failovers as a reader sees them: a kill stalls the read in flight,
// or the next one that needs the daemon (the others hit the page cache or the cache
// file), until a worker answers. The longest read ending in a window after the kill
// is that stall; the window is shorter than the benchmark's pause between kills.
constexpr std::uint64_t kKillWindowNs = 500'000'000;

// Something that took a while, in CLOCK_MONOTONIC ns: a read, or the time between
// two of the heartbeat's wakes.
struct Span {
    std::uint64_t begin, end;
};

// For each kill in `kill_times` (one ns time per line), the longest span that ended
// in the window after it, in us, comma-separated. `spans` end in order. Exits with an
// error naming `what` when no span ended in a window.
std::string longest_after_kills(const std::vector<Span>& spans, const char* kill_times, const char* what) {
    std::ifstream times(kill_times);
    if (!times) die("opening", kill_times);
    std::string longest;
    for (unsigned long long kill_ns = 0; times >> kill_ns;) {
        const auto first = std::partition_point(spans.begin(), spans.end(),
                                                [kill_ns](const Span& r) { return r.end <= kill_ns; });
        const auto last = std::partition_point(first, spans.end(),
                                               [kill_ns](const Span& r) { return r.end <= kill_ns + kKillWindowNs; });
        if (first == last) {
            std::fprintf(stderr, "cfs-bench-read: no %s ended within %llu ms of the kill at %llu ns\n", what,
                         static_cast<unsigned long long>(kKillWindowNs / 1'000'000), kill_ns);
            std::exit(1);
        }
        const auto span = std::max_element(first, last, [](const Span& a, const Span& b) {
            return a.end - a.begin < b.end - b.begin;
        });
        char one[64];
        std::snprintf(one, sizeof one, "%s%.1f", longest.empty() ? "" : ",",
                      static_cast<double>(span->end - span->begin) / 1e3);
        longest += one;
    }
    return longest;
}

void stop_on_sigterm() {
    struct sigaction stop {};
    stop.sa_handler = [](int) { g_stop = 1; };
    ::sigaction(SIGTERM, &stop, nullptr);
}

int kill_stalls(const char* path, unsigned seed, const char* kill_times) {
    stop_on_sigterm();
    RandomBlocks blocks(path, seed);
    std::vector<Span> reads;
    reads.reserve(1 << 16);
    while (g_stop == 0) {
        const std::uint64_t begin = monotonic_ns();
        if (blocks.read_one()) reads.push_back({begin, monotonic_ns()});
    }
    const std::string stalled = longest_after_kills(reads, kill_times, "read");
    std::printf("{\"reads\":%zu,\"stalled_read_us\":[%s]}\n", reads.size(), stalled.c_str());
    return 0;
}

// Whether the VM itself stopped running user space around a kill, which no daemon
// could help: a real-time thread pinned to one vCPU wakes every millisecond, and a
// longer time between two wakes is time that vCPU ran no user space at all (the
// host did not run the vCPU, or its kernel ran on without a point where it could
// switch to the heartbeat).
constexpr std::uint64_t kHeartbeatNs = 1'000'000;

int heartbeat(unsigned cpu, const char* kill_times) {
    stop_on_sigterm();
    cpu_set_t one{};
    CPU_SET(cpu, &one);
    if (::sched_setaffinity(0, sizeof one, &one) < 0) die("pinning the heartbeat to its vCPU", "");
    const sched_param fifo{.sched_priority = 1};
    if (::sched_setscheduler(0, SCHED_FIFO, &fifo) < 0) die("making the heartbeat real-time (SCHED_FIFO)", "");
    std::vector<Span> gaps;
    gaps.reserve(1 << 16);
    std::uint64_t last = monotonic_ns();
    while (g_stop == 0) {
        timespec period{0, static_cast<long>(kHeartbeatNs)};
        ::clock_nanosleep(CLOCK_MONOTONIC, 0, &period, nullptr);
        const std::uint64_t now = monotonic_ns();
        gaps.push_back({last, now});
        last = now;
    }
    const std::string longest = longest_after_kills(gaps, kill_times, "heartbeat");
    std::printf("{\"cpu\":%u,\"wakes\":%zu,\"longest_gap_us\":[%s]}\n", cpu, gaps.size(), longest.c_str());
    return 0;
}

unsigned long long g_tree_files = 0, g_tree_bytes = 0;
std::vector<char> g_tree_buffer(64 << 10);

int read_one(const char* path, const struct stat*, int type, FTW*) {
    if (type != FTW_F) return 0;
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("opening", path);
    g_tree_bytes += drain(fd, path, g_tree_buffer);
    ::close(fd);
    ++g_tree_files;
    return 0;
}

int tree(const char* dir) {
    const auto t0 = Clock::now();
    if (::nftw(dir, read_one, 64, FTW_PHYS) != 0) die("walking", dir);
    const double s = seconds_since(t0);
    std::printf("{\"files\":%llu,\"bytes\":%llu,\"seconds\":%.6f}\n", g_tree_files, g_tree_bytes, s);
    return 0;
}

enum class CopyFrom { pread, willneed, direct };

int copy(const char* path, const char* dest, CopyFrom how, std::size_t chunk, std::size_t max_bytes) {
    const int in = ::open(path, O_RDONLY | O_CLOEXEC | (how == CopyFrom::direct ? O_DIRECT : 0));
    if (in < 0) die("opening", path);
    struct stat st {};
    if (::fstat(in, &st) < 0) die("stat of", path);
    const auto size = std::min(static_cast<std::size_t>(st.st_size), max_bytes);
    const int out = ::open(dest, O_WRONLY | O_CREAT | O_EXCL | O_DIRECT | O_CLOEXEC, 0600);
    if (out < 0) die("creating", dest);
    // Sized first, as cachefiles sizes a cache file: the writes then fill holes
    // instead of extending the file.
    if (::ftruncate(out, static_cast<off_t>((size + 4095) / 4096 * 4096)) < 0) die("sizing", dest);
    void* buffer = huge_buffer(chunk, dest);
    const auto t0 = Clock::now();
    for (std::size_t pos = 0; pos < size; pos += chunk) {
        // Whole blocks, as direct I/O wants; a read is short only at the file's end.
        const std::size_t n = (std::min(chunk, size - pos) + 4095) / 4096 * 4096;
        const ssize_t got = ::pread(in, buffer, n, static_cast<off_t>(pos));
        if (got < 0) die("reading", path);
        if (static_cast<std::size_t>(got) < std::min(n, size - pos)) {
            errno = EIO;
            die("short read of", path);
        }
        if (how == CopyFrom::willneed && pos + chunk < size)
            (void)::posix_fadvise(in, static_cast<off_t>(pos + chunk), static_cast<off_t>(chunk), POSIX_FADV_WILLNEED);
        if (::pwrite(out, buffer, n, static_cast<off_t>(pos)) != static_cast<ssize_t>(n)) die("writing", dest);
    }
    const double s = seconds_since(t0);
    std::printf("{\"bytes\":%zu,\"seconds\":%.6f}\n", size, s);
    return 0;
}

bool parse(const char* s, unsigned& out) {
    const std::string_view v(s);
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc() && p == v.data() + v.size();
}

}  // namespace

int main(int argc, char** argv) {
    const std::string_view mode = argc > 1 ? argv[1] : "";
    unsigned count = 0, seed = 0;
    if (mode == "seq" && argc == 3) return sequential(argv[2]);
    if (mode == "seq-direct" && argc == 3) return sequential_direct(argv[2]);
    unsigned max_seconds = 0;
    if (mode == "rand" && (argc == 5 || (argc == 6 && parse(argv[5], max_seconds))) && parse(argv[3], count) &&
        parse(argv[4], seed) && count > 0)
        return random_reads(argv[2], count, seed, max_seconds);
    if (mode == "rand-kills" && argc == 5 && parse(argv[3], seed)) return kill_stalls(argv[2], seed, argv[4]);
    unsigned pid = 0;
    unsigned cpu = 0;
    if (mode == "heartbeat" && argc == 4 && parse(argv[2], cpu)) return heartbeat(cpu, argv[3]);
    if (mode == "kill" && argc == 3 && parse(argv[2], pid) && pid > 0 && pid <= INT_MAX)
        return kill_now(static_cast<pid_t>(pid));
    if (mode == "tree" && argc == 3) return tree(argv[2]);
    unsigned chunk_kib = 0, max_mib = 0;
    if (mode == "copy" && (argc == 6 || (argc == 7 && parse(argv[6], max_mib) && max_mib > 0)) &&
        parse(argv[5], chunk_kib) && chunk_kib > 0 && chunk_kib % 4 == 0) {
        const std::string_view how = argv[4];
        const std::size_t chunk = std::size_t{chunk_kib} << 10;
        const std::size_t max_bytes = max_mib > 0 ? std::size_t{max_mib} << 20 : SIZE_MAX;
        if (how == "pread") return copy(argv[2], argv[3], CopyFrom::pread, chunk, max_bytes);
        if (how == "willneed") return copy(argv[2], argv[3], CopyFrom::willneed, chunk, max_bytes);
        if (how == "direct") return copy(argv[2], argv[3], CopyFrom::direct, chunk, max_bytes);
    }
    std::fprintf(stderr, "usage: cfs-bench-read seq FILE | seq-direct FILE | rand FILE COUNT SEED [SECONDS] | "
                         "rand-kills FILE SEED KILL_TIMES | heartbeat CPU KILL_TIMES | kill PID | tree DIR | "
                         "copy FILE DEST pread|willneed|direct CHUNK_KIB [MAX_MIB]\n");
    return 2;
}
