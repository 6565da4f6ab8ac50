// Death tests of the worker sandbox: a forked child enters the real sandbox (the very
// enter_sandbox the worker calls, with the built-in policy, a temporary blob
// directory, the unprivileged uid/gid 65534) and then does one thing; the parent
// asserts the exact outcome.
//
// How a test knows WHICH syscall was refused: the child writes "calling <syscall>"
// to its report pipe right before the call and "returned ..." after it. A child
// killed by SIGSYS whose last line is "calling <syscall>" was killed by that call.
// Forbidden calls get harmless arguments (minijail's trick), so a rule that wrongly
// allowed one would show up as "returned", not as damage.
//
// Entering the sandbox needs root (namespaces, setuid); CI runs as root. Elsewhere
// these tests say so and pass without checking anything.
#include "worker/sandbox.h"

#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <linux/cachefiles.h>
#include <linux/seccomp.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "common/fd_passing.h"
#include "common/log.h"
#include "common/seccomp_policy.h"
#include "common/unique_fd.h"
#include "common/blob_url.h"
#include "tests/unit/http_test_server.h"
#include "worker/http_backend.h"
#include "worker/kernel_io.h"
#include "worker/local_backend.h"
#include "worker/verifying_backend.h"
#include "worker/request_stats.h"
#include "common/kernel_msg.h"
#include "common/worker_stats.h"
#include "supervisor/stats_page.h"

namespace {

using namespace cfs;

constexpr uid_t kNobody = 65534;
constexpr std::size_t kBlobSize = 3 * 4096 + 100;
constexpr int kSandboxFailed = 100;

bool have_root() {
    if (::geteuid() == 0) return true;
    MESSAGE("not root: the sandbox tests need root (CI runs them as root); skipped");
    return false;
}

// A blob directory as the supervisor would hand it: world-readable, root's.
class BlobDir {
public:
    BlobDir() {
        char templ[] = "/tmp/cfs-sandbox-test.XXXXXX";
        REQUIRE(::mkdtemp(templ) != nullptr);
        path_ = templ;
        REQUIRE(::chmod(path_.c_str(), 0755) == 0);
        std::string data(kBlobSize, '\0');
        for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
        write("blob", data, 0644);
        write("writable", "anyone may write me\n", 0666);
    }
    BlobDir(const BlobDir&) = delete;
    BlobDir& operator=(const BlobDir&) = delete;
    ~BlobDir() {
        for (const char* f : {"blob", "writable", "new"}) ::unlink((path_ + "/" + f).c_str());
        ::rmdir(path_.c_str());
    }
    const std::string& path() const { return path_; }

private:
    void write(const std::string& name, std::string_view data, mode_t mode) {
        const std::string file = path_ + "/" + name;
        std::ofstream(file, std::ios::binary) << data;
        REQUIRE(::chmod(file.c_str(), mode) == 0);
    }
    std::string path_;
};

// What a probe running in the sandbox has to work with.
struct Probe {
    worker::Sandboxed& sandbox;
    int original_blob_dir;  // the fd number enter_sandbox was given (now closed)
    int report;

    // Only write(): it is all the sandbox allows for this.
    void say(std::string_view line) const {
        const std::string l = std::string(line) + "\n";
        (void)!::write(report, l.data(), l.size());
    }
    void calling(std::string_view syscall) const { say(fmt::format("calling {}", syscall)); }
    void returned(long rc) const { say(fmt::format("returned {} errno {}", rc, rc < 0 ? errno : 0)); }
};

struct Outcome {
    int status = 0;
    std::string report;  // everything the child wrote
    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        std::istringstream in(report);
        for (std::string l; std::getline(in, l);) out.push_back(l);
        return out;
    }
    std::string last_line() const {
        auto l = lines();
        return l.empty() ? "" : l.back();
    }
    bool landlock() const { return report.find("landlock abi 0\n") == std::string::npos; }
};

std::string describe_status(int status) {
    if (WIFEXITED(status)) return fmt::format("exited with {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return fmt::format("killed by signal {} ({})", WTERMSIG(status), ::strsignal(WTERMSIG(status)));
    return fmt::format("status {:#x}", status);
}

// A forked child that enters the sandbox and runs `probe`; `before` runs in the child
// first, still unsandboxed. `while_alive` runs in the parent once the child says it
// is sandboxed and before it is reaped (the child must wait for it, see `go`).
struct SandboxedChild {
    std::function<void(Probe&)> probe;
    std::function<void()> before = [] {};
    std::function<void(pid_t)> while_alive = [](pid_t) {};
    worker::SandboxUser user{kNobody, kNobody};
    // Set: the sandbox of a worker with blobs.url (network kept, the remote policy).
    std::optional<worker::NetworkAccess> network;
    // The directories of [[volume]] stores; nullptr: a store without one.
    std::vector<const BlobDir*> volumes;

    Outcome run(const BlobDir& dir) const {
        int report[2], go[2];
        REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
        unique_fd report_read(report[0]), report_write(report[1]), go_read(go[0]), go_write(go[1]);
        std::fflush(nullptr);
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            report_read.reset();
            go_write.reset();  // or the child would wait for itself
            child(dir, report_write.get(), go_read.get());
        }

        report_write.reset();
        go_read.reset();
        Outcome out;
        std::array<char, 4096> buf;
        // Up to "sandboxed", then the parent's look at the live child, then the rest.
        while (out.report.find("sandboxed\n") == std::string::npos) {
            const ssize_t n = ::read(report_read.get(), buf.data(), buf.size());
            if (n <= 0) break;
            out.report.append(buf.data(), static_cast<std::size_t>(n));
        }
        if (out.report.find("sandboxed\n") != std::string::npos) while_alive(pid);
        go_write.reset();  // the child's read of `go` returns 0: carry on
        for (;;) {
            const ssize_t n = ::read(report_read.get(), buf.data(), buf.size());
            if (n <= 0) break;
            out.report.append(buf.data(), static_cast<std::size_t>(n));
        }
        REQUIRE(::waitpid(pid, &out.status, 0) == pid);
        INFO("child ", describe_status(out.status), ", report:\n", out.report);
        return out;
    }

private:
    [[noreturn]] void child(const BlobDir& dir, int report, int go) const {
        // As a worker starts: no handlers (doctest's would run in the sandbox).
        for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
        before();
        unique_fd blob_dir(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        const int original = blob_dir.get();
        auto policy = seccomp::builtin_policy_for(network.has_value());
        if (!policy) {
            const std::string m = policy.error().message() + "\n";
            (void)!::write(report, m.data(), m.size());
            ::_exit(kSandboxFailed);
        }
        std::vector<unique_fd> volume_dirs;
        for (const BlobDir* v : volumes)
            volume_dirs.emplace_back(v ? ::open(v->path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1);
        auto sandboxed = worker::enter_sandbox(std::move(blob_dir), user, *policy, network, std::move(volume_dirs));
        if (!sandboxed) {
            const std::string m = "enter_sandbox: " + sandboxed.error().message() + "\n";
            (void)!::write(report, m.data(), m.size());
            ::_exit(kSandboxFailed);
        }
        Probe p{*sandboxed, original, report};
        p.say(fmt::format("landlock abi {}", sandboxed->landlock.abi));
        p.say("sandboxed");
        char c;
        (void)!::read(go, &c, 1);
        probe(p);
        p.say("done");
        ::_exit(0);
    }
};

// Runs `call` in a sandboxed child that reports before and after it.
Outcome run_call(const BlobDir& dir, std::string_view syscall, const std::function<long()>& call,
                 std::optional<worker::NetworkAccess> network = {}) {
    SandboxedChild c;
    c.network = network;
    c.probe = [&](Probe& p) {
        p.calling(syscall);
        p.returned(call());
    };
    return c.run(dir);
}

// Asserts that `call` is refused with SIGSYS: the child dies by SIGSYS, and the last
// thing it said is that it was about to make this very call.
void check_killed(const BlobDir& dir, std::string_view syscall, const std::function<long()>& call,
                  std::optional<worker::NetworkAccess> network = {}) {
    const Outcome out = run_call(dir, syscall, call, network);
    INFO("syscall ", syscall, ": child ", describe_status(out.status), ", report:\n", out.report);
    CHECK(WIFSIGNALED(out.status));
    CHECK(WTERMSIG(out.status) == SIGSYS);
    CHECK(out.last_line() == fmt::format("calling {}", syscall));
}

// Asserts that `call` is let through by seccomp and fails with `expected_errno`.
void check_errno(const BlobDir& dir, std::string_view syscall, int expected_errno, const std::function<long()>& call) {
    const Outcome out = run_call(dir, syscall, call);
    INFO("syscall ", syscall, ": child ", describe_status(out.status), ", report:\n", out.report);
    REQUIRE(WIFEXITED(out.status));
    CHECK(WEXITSTATUS(out.status) == 0);
    CHECK(out.report.find(fmt::format("calling {}\nreturned -1 errno {}\n", syscall, expected_errno)) !=
          std::string::npos);
}

long openat2_at(int dir, const char* path, std::uint64_t flags) {
    open_how how{};
    how.flags = flags;
    return ::syscall(SYS_openat2, dir, path, &how, sizeof how);
}

}  // namespace

// ---- The allowed path ----------------------------------------------------------

TEST_CASE("sandbox: a worker's own work still runs (openat2+pread64 of a blob, pwrite64, lseek SEEK_DATA/HOLE, fcntl FD_CLOEXEC, ioctl "
          "READ_COMPLETE, fstatfs, sendmsg/recvmsg with an fd, epoll, poll, read/write, malloc, log)") {
    if (!have_root()) return;
    BlobDir dir;
    int pair[2], device[2];
    int memfd = -1;
    SandboxedChild c;
    c.before = [&] {
        // The device stand-in is read and written through one fd, as /dev/cachefiles is.
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0 ||
            ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, device) < 0)
            ::_exit(kSandboxFailed);
        memfd = static_cast<int>(::syscall(SYS_memfd_create, "cache", MFD_CLOEXEC));
        if (memfd < 0) ::_exit(kSandboxFailed);
        // A request waiting on the "device".
        if (::write(device[1], "request", 7) != 7) ::_exit(kSandboxFailed);
    };
    c.probe = [&](Probe& p) {
        auto fail = [&](std::string_view what, const Error& e) {
            p.say(fmt::format("FAILED {}: {}", what, e.message()));
            ::_exit(1);
        };
        // OPEN: the blob beneath the directory fd, exactly as the worker opens it.
        worker::LocalDirBackend backend(std::move(p.sandbox.blob_dir));
        auto blob = backend.open("blob");
        if (!blob) fail("opening the blob", blob.error());
        p.say(fmt::format("blob size {}", (*blob)->size()));
        std::vector<std::byte> data(8192);
        auto got = (*blob)->read_at(data, 4096);
        if (!got) fail("reading the blob", got.error());
        p.say(fmt::format("read {} bytes from offset 4096, first '{}'", *got, static_cast<char>(data[0])));

        // The device: read a request, write a reply.
        worker::DeviceKernelIo kernel{unique_fd(device[0])};
        std::array<std::byte, 64> request;
        auto n = kernel.read_request(request);
        if (!n) fail("reading the request", n.error());
        p.say(fmt::format("request of {} bytes", *n));
        if (auto w = kernel.write_command("copen 1,4096"); !w) fail("writing a reply", w.error());
        std::array<char, 64> reply{};
        const ssize_t replied = ::read(device[1], reply.data(), reply.size());
        p.say(fmt::format("reply '{}'", std::string_view(reply.data(), replied > 0 ? static_cast<std::size_t>(replied) : 0)));

        // READ: block-aligned bytes into the "cache file" (the memfd standing in for the
        // anon fd), then READ_COMPLETE, which seccomp lets through and the kernel refuses
        // on a memfd.
        void* aligned = std::aligned_alloc(4096, 4096);
        std::memset(aligned, 'x', 4096);
        if (auto w = kernel.write_cache(memfd, std::span(static_cast<const std::byte*>(aligned), 4096), 8192); !w)
            fail("pwrite64 into the cache file", w.error());
        std::free(aligned);
        // Read-ahead asks what the cache file holds.
        auto data_at = kernel.seek(memfd, 0, worker::KernelIo::Seek::data);
        auto hole_at = kernel.seek(memfd, 8192, worker::KernelIo::Seek::hole);
        if (!data_at || !hole_at) fail("lseek SEEK_DATA/SEEK_HOLE", data_at ? hole_at.error() : data_at.error());
        p.say(fmt::format("data from {}, hole from {}", *data_at, *hole_at));
        // What the worker does to each anon fd the kernel installs.
        if (::fcntl(memfd, F_SETFD, FD_CLOEXEC) < 0) fail("fcntl F_SETFD", sys_error("fcntl"));
        auto done = kernel.complete_read(memfd, 7);
        p.say(fmt::format("READ_COMPLETE: {}", done ? "ok" : std::to_string(done.error().errnum)));
        p.say(fmt::format("memfd is a cachefiles anon fd: {}", kernel.is_cache_anon_fd(memfd)));

        // The supervisor socket: a message with an fd.
        const std::array<std::byte, 3> hello{std::byte{'h'}, std::byte{'i'}, std::byte{'!'}};
        const int fds[] = {memfd};
        if (auto s = send_message(pair[0], hello, fds); !s) fail("sendmsg", s.error());
        std::array<std::byte, 16> in;
        auto r = receive_message(pair[1], in, kMaxFdsPerMessage);
        if (!r) fail("recvmsg", r.error());
        p.say(fmt::format("received {} bytes and {} fd", r->size, r->fds.size()));

        // The event loop.
        unique_fd ep(::epoll_create1(EPOLL_CLOEXEC));
        if (!ep) fail("epoll_create1", sys_error("epoll_create1"));
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = pair[1];
        if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, pair[1], &ev) < 0) fail("epoll_ctl", sys_error("epoll_ctl"));
        std::array<epoll_event, 2> events;
        if (::epoll_wait(ep.get(), events.data(), 2, 0) < 0) fail("epoll_wait", sys_error("epoll_wait"));
        pollfd pfd{pair[1], POLLIN, 0};
        if (::poll(&pfd, 1, 0) < 0) fail("poll", sys_error("poll"));

        // malloc, large (mmap, munmap) and small, and a log line (getpid, write).
        std::vector<char> big(8 << 20, 'y');
        std::string small(100, 'z');
        log::info("a log line from the sandbox ({} + {} bytes)", big.size(), small.size());
        p.say("all allowed");
    };
    const Outcome out = c.run(dir);
    INFO("child ", describe_status(out.status), ", report:\n", out.report);
    REQUIRE(WIFEXITED(out.status));
    CHECK(WEXITSTATUS(out.status) == 0);
    CHECK(out.report.find("blob size 12388\n") != std::string::npos);
    CHECK(out.report.find("read 8192 bytes from offset 4096, first 'o'\n") != std::string::npos);
    CHECK(out.report.find("request of 7 bytes\nreply 'copen 1,4096'\n") != std::string::npos);
    CHECK(out.report.find("data from 8192, hole from 12288\n") != std::string::npos);
    CHECK(out.report.find(fmt::format("READ_COMPLETE: {}\n", ENOTTY)) != std::string::npos);
    CHECK(out.report.find("memfd is a cachefiles anon fd: false\n") != std::string::npos);
    CHECK(out.report.find("received 3 bytes and 1 fd\n") != std::string::npos);
    CHECK(out.report.find("all allowed\ndone\n") != std::string::npos);
}

TEST_CASE("sandbox: openat (flags within the policy's) still opens blobs where openat2 fails with ENOSYS, as "
          "under systemd's RestrictSUIDSGID=") {
    if (!have_root()) return;
    BlobDir dir;
    SandboxedChild c;
    c.before = [] {
        // systemd's filter, stacked under ours: openat2 fails with ENOSYS.
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (ctx == nullptr || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0) < 0 ||
            seccomp_load(ctx) < 0)
            ::_exit(kSandboxFailed);
        seccomp_release(ctx);
    };
    c.probe = [](Probe& p) {
        p.calling("openat2");
        p.returned(openat2_at(p.sandbox.blob_dir.get(), "blob", O_RDONLY | O_CLOEXEC));
        worker::LocalDirBackend backend(std::move(p.sandbox.blob_dir));
        auto blob = backend.open("blob");
        p.say(blob ? fmt::format("opened, {} bytes", (*blob)->size()) : blob.error().message());
    };
    const Outcome out = c.run(dir);
    REQUIRE(WIFEXITED(out.status));
    CHECK(WEXITSTATUS(out.status) == 0);
    CHECK(out.report.find(fmt::format("calling openat2\nreturned -1 errno {}\n", ENOSYS)) != std::string::npos);
    CHECK(out.report.find("opened, 12388 bytes\n") != std::string::npos);
}

TEST_CASE("sandbox: abort() still ends the worker with SIGABRT (rt_sigprocmask, gettid, getpid, tgkill)") {
    if (!have_root()) return;
    BlobDir dir;
    SandboxedChild c;
    c.probe = [](Probe& p) {
        p.calling("abort");
        std::abort();
    };
    const Outcome out = c.run(dir);
    CHECK(WIFSIGNALED(out.status));
    CHECK(WTERMSIG(out.status) == SIGABRT);
    CHECK(out.last_line() == "calling abort");
}

TEST_CASE("sandbox: a worker's statistics page, mapped before the sandbox, is written in it; clock_gettime of "
          "CLOCK_MONOTONIC works even as a real system call (no vDSO clock)") {
    if (!have_root()) return;
    BlobDir dir;
    auto page = supervisor::StatsPage::create();
    REQUIRE_MESSAGE(page.ok(), page.error().message());
    worker::MappedStatsPage mapped;
    SandboxedChild c;
    c.before = [&] {
        unique_fd fd(::dup(page->fd()));
        auto m = worker::MappedStatsPage::map(fd);
        if (!m) ::_exit(kSandboxFailed);
        mapped = std::move(*m);
    };
    c.probe = [&](Probe& p) {
        timespec ts{};
        p.calling("clock_gettime");
        p.returned(::syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts));
        worker::RequestStats recorder(mapped.get());
        kmsg::Header h{1, static_cast<std::uint32_t>(kmsg::Opcode::read), sizeof h, 3};
        recorder.begin(std::as_bytes(std::span(&h, 1)));
        recorder.end(4096);
        p.say("recorded");
    };
    const Outcome out = c.run(dir);
    REQUIRE(WIFEXITED(out.status));
    CHECK(WEXITSTATUS(out.status) == 0);
    CHECK(out.report.find("calling clock_gettime\nreturned 0 errno 0\nrecorded\n") != std::string::npos);
    const auto r = supervisor::read_page(page->layout(), 0, UINT64_MAX / 2);
    CHECK(r.header_ok);
    CHECK(r.counts.requests[stats::kOpcodeRead] == 1);
    CHECK(r.counts.bytes_written == 4096);
}

// ---- What is killed ------------------------------------------------------------

TEST_CASE("sandbox: clock_gettime of a clock other than CLOCK_MONOTONIC is killed with SIGSYS") {
    if (!have_root()) return;
    BlobDir dir;
    timespec ts{};
    check_killed(dir, "clock_gettime", [&] { return ::syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts); });
}

TEST_CASE("sandbox: fadvise64 POSIX_FADV_WILLNEED on a blob is allowed; any other advice is killed with SIGSYS") {
    if (!have_root()) return;
    BlobDir dir;
    const Outcome out = run_call(dir, "fadvise64 WILLNEED", [] {
        const long fd = openat2_at(AT_FDCWD, "/blobs/blob", O_RDONLY | O_CLOEXEC);
        if (fd < 0) return fd;
        return ::syscall(SYS_fadvise64, static_cast<int>(fd), 0, 4096, POSIX_FADV_WILLNEED);
    });
    INFO("child ", describe_status(out.status), ", report:\n", out.report);
    REQUIRE(WIFEXITED(out.status));
    CHECK(out.report.find("calling fadvise64 WILLNEED\nreturned 0 errno 0\n") != std::string::npos);
    check_killed(dir, "fadvise64 DONTNEED", [] { return ::syscall(SYS_fadvise64, 0, 0, 0, POSIX_FADV_DONTNEED); });
}

TEST_CASE("sandbox: statx (AT_EMPTY_PATH) of a blob and openat with O_DIRECT are allowed; statx of a path is "
          "killed with SIGSYS") {
    if (!have_root()) return;
    BlobDir dir;
    // The direct I/O alignment of an open blob, as LocalDirBackend asks it. The blob
    // is opened without O_DIRECT: the filter is what is tested, whatever /tmp is.
    Outcome out = run_call(dir, "statx DIOALIGN", [] {
        const long fd = openat2_at(AT_FDCWD, "/blobs/blob", O_RDONLY | O_CLOEXEC);
        if (fd < 0) return fd;
        struct statx stx {};
        return ::syscall(SYS_statx, static_cast<int>(fd), "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx);
    });
    INFO("child ", describe_status(out.status), ", report:\n", out.report);
    REQUIRE(WIFEXITED(out.status));
    CHECK(out.report.find("calling statx DIOALIGN\nreturned 0 errno 0\n") != std::string::npos);
    // openat's flags are checked by the filter (openat2's are not): O_DIRECT passes it.
    // A filesystem without direct I/O answers EINVAL; the call is not killed.
    out = run_call(dir, "openat O_DIRECT", [] {
        return ::syscall(SYS_openat, AT_FDCWD, "/blobs/blob", O_RDONLY | O_CLOEXEC | O_DIRECT | O_NOFOLLOW);
    });
    INFO("child ", describe_status(out.status), ", report:\n", out.report);
    REQUIRE(WIFEXITED(out.status));
    CHECK(out.report.find("calling openat O_DIRECT\nreturned ") != std::string::npos);
    CHECK(out.report.find("errno " + std::to_string(ENOSYS)) == std::string::npos);
    struct statx stx {};
    check_killed(dir, "statx of a path", [&] { return ::syscall(SYS_statx, AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx); });
}

TEST_CASE("sandbox: lseek other than SEEK_DATA or SEEK_HOLE is killed with SIGSYS") {
    if (!have_root()) return;
    BlobDir dir;
    check_killed(dir, "lseek", [] { return ::syscall(SYS_lseek, 0, 0, SEEK_SET); });
}

TEST_CASE("sandbox: socket is killed with SIGSYS") {
    if (!have_root()) return;
    BlobDir dir;
    check_killed(dir, "socket", [] { return ::syscall(SYS_socket, AF_INET, SOCK_STREAM, 0); });
}

TEST_CASE("sandbox: ptrace is killed with SIGSYS") {
    if (!have_root()) return;
    BlobDir dir;
    check_killed(dir, "ptrace", [] { return ::syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0); });
}

TEST_CASE("sandbox: execve is killed with SIGSYS") {
    if (!have_root()) return;
    BlobDir dir;
    check_killed(dir, "execve", [] {
        const char* argv[] = {"true", nullptr};
        const char* envp[] = {nullptr};
        return ::syscall(SYS_execve, "/bin/true", argv, envp);
    });
}

TEST_CASE("sandbox: mount is killed with SIGSYS") {
    if (!have_root()) return;
    BlobDir dir;
    check_killed(dir, "mount", [] { return ::syscall(SYS_mount, "none", "/", "tmpfs", MS_REMOUNT, nullptr); });
}

TEST_CASE("sandbox: setuid is killed with SIGSYS") {
    if (!have_root()) return;
    BlobDir dir;
    check_killed(dir, "setuid", [] { return ::syscall(SYS_setuid, 0); });
}

TEST_CASE("sandbox: ioctl with a request other than CACHEFILES_IOC_READ_COMPLETE is killed with SIGSYS") {
    if (!have_root()) return;
    BlobDir dir;
    check_killed(dir, "ioctl FIONREAD", [] {
        int n = 0;
        return ::syscall(SYS_ioctl, STDERR_FILENO, FIONREAD, &n);
    });
    // The allowed request number with the upper half of the 64-bit argument set is
    // not the allowed request.
    check_killed(dir, "ioctl READ_COMPLETE|1<<32", [] {
        return ::syscall(SYS_ioctl, STDERR_FILENO, (1UL << 32) | CACHEFILES_IOC_READ_COMPLETE, 0);
    });
}

TEST_CASE("sandbox: the rest of what a compromised worker would reach for is killed with SIGSYS") {
    if (!have_root()) return;
    BlobDir dir;
    check_killed(dir, "clone (fork)", [] { return static_cast<long>(::fork()); });
    check_killed(dir, "kill", [] { return ::syscall(SYS_kill, ::getpid(), 0); });
    check_killed(dir, "tgkill of another process", [] {
        // The parent, root, is beyond this uid's reach anyway: harmless if allowed.
        return ::syscall(SYS_tgkill, ::getppid(), ::getppid(), SIGABRT);
    });
    check_killed(dir, "tgkill with a signal other than SIGABRT", [] {
        return ::syscall(SYS_tgkill, ::getpid(), ::syscall(SYS_gettid), SIGCONT);
    });
    check_killed(dir, "chdir", [] { return ::syscall(SYS_chdir, "/blobs"); });
    // The device's cull and inuse resolve names in the writer's working directory with
    // the cache's credentials: the worker's must stay its empty root.
    check_killed(dir, "fchdir", [] { return ::syscall(SYS_fchdir, STDERR_FILENO); });
    check_killed(dir, "mmap PROT_EXEC", [] {
        void* m = ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return m == MAP_FAILED ? -1L : 0L;
    });
    // Memory RLIMIT_DATA does not count (shared, stack-like) or that comes from the
    // host's pools (huge pages, locked).
    for (const auto& [what, flags] : {std::pair{"mmap MAP_SHARED", MAP_SHARED | MAP_ANONYMOUS},
                                      std::pair{"mmap MAP_GROWSDOWN", MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN},
                                      std::pair{"mmap MAP_HUGETLB", MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB},
                                      std::pair{"mmap MAP_LOCKED", MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED}})
        check_killed(dir, what, [flags = flags] {
            void* m = ::mmap(nullptr, 1 << 21, PROT_READ | PROT_WRITE, flags, -1, 0);
            return m == MAP_FAILED ? -1L : 0L;
        });
    check_killed(dir, "mprotect", [] {
        static char page[4096] __attribute__((aligned(4096)));
        return ::syscall(SYS_mprotect, page, sizeof page, PROT_READ);
    });
    check_killed(dir, "openat O_RDWR", [] { return ::syscall(SYS_openat, AT_FDCWD, "/blobs/blob", O_RDWR); });
    check_killed(dir, "openat O_CREAT", [] {
        return ::syscall(SYS_openat, AT_FDCWD, "/blobs/new", O_RDONLY | O_CREAT, 0644);
    });
    check_killed(dir, "unshare", [] { return ::syscall(SYS_unshare, CLONE_NEWUSER); });
    check_killed(dir, "seccomp", [] { return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, nullptr); });
    check_killed(dir, "prctl", [] { return ::syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0); });
    check_killed(dir, "fcntl F_DUPFD", [] { return ::syscall(SYS_fcntl, STDERR_FILENO, F_DUPFD, 0); });
    check_killed(dir, "fcntl F_SETFD 0", [] { return ::syscall(SYS_fcntl, STDERR_FILENO, F_SETFD, 0); });
    check_killed(dir, "sendmsg without MSG_NOSIGNAL", [] { return ::syscall(SYS_sendmsg, STDERR_FILENO, nullptr, 0); });
}

// ---- Files: what the mount namespace, the mount flags and Landlock refuse --------

TEST_CASE("sandbox: openat of a path outside the blob directory fails: the worker's root has nothing (ENOENT)") {
    if (!have_root()) return;
    BlobDir dir;
    check_errno(dir, "openat /etc/passwd", ENOENT,
                [] { return ::syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY | O_CLOEXEC); });
    // The blob directory as the host names it is not there either.
    const std::string host_path = dir.path() + "/blob";
    check_errno(dir, "openat2 <host path of the blob>", ENOENT,
                [&] { return openat2_at(AT_FDCWD, host_path.c_str(), O_RDONLY | O_CLOEXEC); });
}

TEST_CASE("sandbox: openat2 of the root or of '..' beneath the blob directory fails with EACCES (Landlock)") {
    if (!have_root()) return;
    BlobDir dir;
    for (const bool via_dotdot : {false, true}) {
        SandboxedChild c;
        c.probe = [&](Probe& p) {
            p.calling("openat2");
            p.returned(via_dotdot ? openat2_at(p.sandbox.blob_dir.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                                  : openat2_at(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        };
        const Outcome out = c.run(dir);
        REQUIRE(WIFEXITED(out.status));
        if (!out.landlock()) {
            MESSAGE("this kernel has no Landlock: the root is readable (and empty)");
            continue;
        }
        CHECK(out.report.find(fmt::format("returned -1 errno {}\n", EACCES)) != std::string::npos);
    }
}

TEST_CASE("sandbox: the directories of [[volume]] stores are mounted read-only at /volumes/N and readable, "
          "/volumes itself is not") {
    if (!have_root()) return;
    BlobDir dir, volume1, volume2;
    SandboxedChild c;
    // Stores without a directory among them keep their places, and take no number.
    c.volumes = {nullptr, &volume1, nullptr, &volume2};
    c.probe = [&](Probe& p) {
        p.say(fmt::format("volume fds {}", p.sandbox.volume_dirs.size()));
        for (unique_fd& fd : p.sandbox.volume_dirs) {
            if (!fd) {
                p.say("no directory");
                continue;
            }
            worker::LocalDirBackend backend(std::move(fd));
            auto blob = backend.open("blob");
            p.say(blob ? fmt::format("volume blob size {}", (*blob)->size())
                       : fmt::format("volume blob: {}", blob.error().message()));
        }
        p.calling("openat2 /volumes/2/blob");
        p.returned(openat2_at(AT_FDCWD, "/volumes/2/blob", O_RDONLY | O_CLOEXEC));
        p.calling("openat2 /volumes/1/new for writing");
        p.returned(openat2_at(AT_FDCWD, "/volumes/1/new", O_WRONLY | O_CREAT | O_CLOEXEC));
        p.calling("openat2 /volumes");
        p.returned(openat2_at(AT_FDCWD, "/volumes", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    };
    const Outcome out = c.run(dir);
    REQUIRE(WIFEXITED(out.status));
    CHECK(WEXITSTATUS(out.status) == 0);
    CHECK(out.report.find(fmt::format("volume fds 4\nno directory\nvolume blob size {0}\nno directory\n"
                                      "volume blob size {0}\n",
                                      kBlobSize)) !=
          std::string::npos);
    CHECK(out.report.find("calling openat2 /volumes/2/blob\nreturned -1") == std::string::npos);
    const bool refused_write = out.report.find(fmt::format("for writing\nreturned -1 errno {}\n", EROFS)) != std::string::npos ||
                               out.report.find(fmt::format("for writing\nreturned -1 errno {}\n", EACCES)) != std::string::npos;
    CHECK(refused_write);
    if (out.landlock())
        CHECK(out.report.find(fmt::format("calling openat2 /volumes\nreturned -1 errno {}\n", EACCES)) !=
              std::string::npos);
    else
        MESSAGE("this kernel has no Landlock: /volumes is readable (and holds only the mounts)");
}

TEST_CASE("sandbox: openat2 for writing or creating beneath the blob directory fails with EROFS or EACCES") {
    if (!have_root()) return;
    BlobDir dir;
    struct Case {
        const char* name;
        std::uint64_t flags;
        int expected;
        const char* why;
    };
    const Case cases[] = {
        {"writable", O_RDWR, EROFS, "a world-writable blob: the bind mount is read-only"},
        {"blob", O_RDWR, EACCES, "a 0644 blob of root's: not the worker's to write"},
        {"new", O_WRONLY | O_CREAT, EROFS, "a new file: the bind mount is read-only"},
    };
    for (const Case& k : cases) {
        SandboxedChild c;
        c.probe = [&](Probe& p) {
            p.calling("openat2");
            p.returned(openat2_at(p.sandbox.blob_dir.get(), k.name, k.flags | O_CLOEXEC));
        };
        const Outcome out = c.run(dir);
        INFO(k.why, "; report:\n", out.report);
        REQUIRE(WIFEXITED(out.status));
        CHECK(out.report.find(fmt::format("returned -1 errno {}\n", k.expected)) != std::string::npos);
    }
}

// ---- The state the sandbox leaves, seen from outside ------------------------------

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string status_field(const std::string& status, std::string_view field) {
    std::istringstream in(status);
    for (std::string l; std::getline(in, l);)
        if (l.starts_with(std::string(field) + ":")) {
            std::string v = l.substr(field.size() + 1);
            v.erase(0, v.find_first_not_of(" \t"));
            return v;
        }
    return "<missing>";
}

std::string link_of(const std::string& path) {
    std::array<char, 256> buf{};
    const ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size() - 1);
    return n < 0 ? "<unreadable>" : std::string(buf.data(), static_cast<std::size_t>(n));
}

}  // namespace

TEST_CASE("sandbox: a sandboxed process has uid/gid 65534, no capability, no_new_privs, seccomp, its own "
          "namespaces, an empty read-only root as root and cwd, and the limits") {
    if (!have_root()) return;
    BlobDir dir;
    std::string status, mountinfo, limits, root_listing;
    std::vector<std::pair<std::string, bool>> namespaces;  // name, differs from ours
    bool cwd_is_root = false;
    SandboxedChild c;
    c.probe = [](Probe& p) {
        // The fd it was given is closed; the one it uses now is the read-only mount.
        struct stat st {};
        p.calling("newfstatat(original blob dir fd)");
        p.returned(::syscall(SYS_newfstatat, p.original_blob_dir, "", &st, AT_EMPTY_PATH));
    };
    c.while_alive = [&](pid_t pid) {
        const std::string proc = fmt::format("/proc/{}", pid);
        status = read_file(proc + "/status");
        mountinfo = read_file(proc + "/mountinfo");
        limits = read_file(proc + "/limits");
        for (const char* ns : {"mnt", "ipc", "uts", "net"})
            namespaces.emplace_back(ns, link_of(proc + "/ns/" + ns) != link_of(std::string("/proc/self/ns/") + ns));
        std::string entries;
        if (DIR* d = ::opendir((proc + "/root").c_str())) {
            while (const dirent* e = ::readdir(d))
                if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..") entries += e->d_name;
            ::closedir(d);
        }
        root_listing = entries;
        struct stat root {}, cwd {};
        cwd_is_root = ::stat((proc + "/root").c_str(), &root) == 0 && ::stat((proc + "/cwd").c_str(), &cwd) == 0 &&
                      root.st_dev == cwd.st_dev && root.st_ino == cwd.st_ino;
    };
    const Outcome out = c.run(dir);
    REQUIRE(WIFEXITED(out.status));
    CHECK(WEXITSTATUS(out.status) == 0);
    CHECK(out.report.find(fmt::format("returned -1 errno {}\n", EBADF)) != std::string::npos);

    CHECK(status_field(status, "Uid") == "65534\t65534\t65534\t65534");
    CHECK(status_field(status, "Gid") == "65534\t65534\t65534\t65534");
    CHECK(status_field(status, "Groups") == "");
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
        CHECK_MESSAGE(status_field(status, set) == "0000000000000000", set);
    CHECK(status_field(status, "NoNewPrivs") == "1");
    CHECK(status_field(status, "Seccomp") == "2");
    for (const auto& [ns, differs] : namespaces) CHECK_MESSAGE(differs, "namespace ", ns, " is the test's own");
    CHECK(root_listing == "blobs");
    CHECK(cwd_is_root);
    INFO("mountinfo:\n", mountinfo);
    // "<id> <parent> <dev> <root> <mount point> <options> ..." : the root read-only,
    // the blobs read-only, nosuid, nodev, noexec, and nothing else.
    std::istringstream mounts(mountinfo);
    std::vector<std::string> points;
    for (std::string l; std::getline(mounts, l);) {
        std::istringstream f(l);
        std::string id, parent, dev, root, point, options;
        f >> id >> parent >> dev >> root >> point >> options;
        points.push_back(point);
        CHECK_MESSAGE(options.starts_with("ro,"), point, " is ", options);
        if (point == "/blobs") {
            CHECK(options.find("nosuid") != std::string::npos);
            CHECK(options.find("nodev") != std::string::npos);
            CHECK(options.find("noexec") != std::string::npos);
        }
    }
    std::sort(points.begin(), points.end());
    CHECK(points == std::vector<std::string>{"/", "/blobs"});
    INFO("limits:\n", limits);
    CHECK(limits.find("Max core file size        0                    0") != std::string::npos);
    CHECK(limits.find("Max processes             0                    0") != std::string::npos);
    CHECK(limits.find("Max open files            6144                 6144") != std::string::npos);
}

TEST_CASE("sandbox: enter_sandbox refuses uid or gid 0") {
    if (!have_root()) return;
    BlobDir dir;
    SandboxedChild c;
    c.user = {0, kNobody};
    c.probe = [](Probe&) {};
    const Outcome out = c.run(dir);
    REQUIRE(WIFEXITED(out.status));
    CHECK(WEXITSTATUS(out.status) == kSandboxFailed);
    CHECK(out.report.find("enter_sandbox: refusing to run as uid 0 gid 65534: a worker's user must not be root") !=
          std::string::npos);
}

TEST_CASE("sandbox: entered with only the capabilities units/cfsupervisor.service grants (no CAP_DAC_OVERRIDE, "
          "no CAP_SYS_CHROOT)") {
    if (!have_root()) return;
    BlobDir dir;
    SandboxedChild c;
    c.before = [] {
        // CapabilityBoundingSet=CAP_SYS_ADMIN CAP_SETUID CAP_SETGID CAP_SETPCAP CAP_DAC_READ_SEARCH CAP_KILL
        const cap_value_t kept[] = {CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_DAC_READ_SEARCH, CAP_KILL};
        constexpr int kKept = sizeof kept / sizeof kept[0];
        cap_t caps = cap_init();
        if (caps == nullptr || cap_set_flag(caps, CAP_PERMITTED, kKept, kept, CAP_SET) < 0 ||
            cap_set_flag(caps, CAP_EFFECTIVE, kKept, kept, CAP_SET) < 0 || cap_set_proc(caps) < 0)
            ::_exit(kSandboxFailed);
        cap_free(caps);
    };
    c.probe = [](Probe& p) {
        worker::LocalDirBackend backend(std::move(p.sandbox.blob_dir));
        auto blob = backend.open("blob");
        p.say(blob ? fmt::format("opened, {} bytes", (*blob)->size()) : blob.error().message());
    };
    const Outcome out = c.run(dir);
    INFO("child ", describe_status(out.status), ", report:\n", out.report);
    REQUIRE(WIFEXITED(out.status));
    CHECK(WEXITSTATUS(out.status) == 0);
    CHECK(out.report.find("opened, 12388 bytes\n") != std::string::npos);
}

TEST_CASE("sandbox: a sandboxed worker still dies with its supervisor (the user switch forgets PR_SET_PDEATHSIG)") {
    if (!have_root()) return;
    BlobDir dir;
    int alive[2];
    REQUIRE(::pipe2(alive, O_CLOEXEC) == 0);
    unique_fd alive_read(alive[0]), alive_write(alive[1]);
    std::fflush(nullptr);
    // The supervisor's stand-in starts a worker, waits until it is sandboxed, and dies.
    const pid_t supervisor = ::fork();
    REQUIRE(supervisor >= 0);
    if (supervisor == 0) {
        alive_read.reset();
        int ready[2];
        if (::pipe2(ready, O_CLOEXEC) < 0) ::_exit(2);
        const pid_t parent = ::getpid();
        const pid_t worker = ::fork();
        if (worker < 0) ::_exit(2);
        if (worker == 0) {
            for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
            // As worker/main.cc starts.
            if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || ::getppid() != parent) ::_exit(3);
            auto policy = seccomp::builtin_policy_for(false);
            if (!policy) ::_exit(kSandboxFailed);
            unique_fd blob_dir(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!worker::enter_sandbox(std::move(blob_dir), worker::SandboxUser{kNobody, kNobody}, *policy,
                                       std::nullopt, {}))
                ::_exit(kSandboxFailed);
            const pid_t me = ::getpid();
            (void)!::write(alive_write.get(), &me, sizeof me);  // the write end stays open until it dies
            (void)!::write(ready[1], "s", 1);
            for (;;) (void)::poll(nullptr, 0, -1);
        }
        alive_write.reset();
        char c;
        ::_exit(::read(ready[0], &c, 1) == 1 ? 0 : 4);
    }
    alive_write.reset();
    int status = 0;
    REQUIRE(::waitpid(supervisor, &status, 0) == supervisor);
    REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "the stand-in ", describe_status(status));
    pid_t worker = 0;
    REQUIRE(::read(alive_read.get(), &worker, sizeof worker) == static_cast<ssize_t>(sizeof worker));
    // The worker's end closes when it dies: EOF within 10 s, or it outlived its supervisor.
    pollfd p{alive_read.get(), POLLIN, 0};
    const bool died = ::poll(&p, 1, 10'000) == 1 && ::read(alive_read.get(), &status, 1) == 0;
    if (!died) ::kill(worker, SIGKILL);
    CHECK_MESSAGE(died, "the sandboxed worker ", worker, " lived on after its supervisor died");
}

// ---- Remote workers (blobs.url): network kept, policy/worker-remote.seccomp added ----

TEST_CASE("sandbox (remote): a remote worker fetches a blob over TCP from inside its sandbox: HEAD, ranges, and a "
          "new connection after the server dropped one") {
    if (!have_root()) return;
    BlobDir dir;
    testing::HttpTestServer server;
    REQUIRE(server.ok());
    std::string data(300000, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 1000);
    server.put("remote_blob", data);
    server.put("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc");
    server.put("sha256:" + std::string(64, '0'), "abc");
    std::unique_ptr<worker::HttpBackend> backend;  // made in the child, before its sandbox
    SandboxedChild c;
    c.network = worker::NetworkAccess{{server.port()}};
    c.before = [&] {
        auto url = parse_blob_url(server.url());
        if (!url) ::_exit(kSandboxFailed);
        auto created = worker::HttpBackend::create(worker::HttpOptions{
            .url = *url, .resolve = url->host_port() + ":127.0.0.1", .ca_bundle = {}, .policy = {},
            .on_fetch_error = {}, .credentials = {}, .allowed_origins = {}});
        if (!created || !worker::prepare_sha256()) ::_exit(kSandboxFailed);
        backend = std::move(*created);
    };
    c.probe = [&](Probe& p) {
        auto blob = backend->open("remote_blob");
        if (!blob) {
            p.say("FAILED open: " + blob.error().message());
            return;
        }
        p.say(fmt::format("size {}", (*blob)->size()));
        std::string got;
        std::vector<std::byte> buf(65536);
        for (std::uint64_t pos = 0; pos < (*blob)->size();) {
            auto n = (*blob)->read_at(buf, pos);
            if (!n) {
                p.say("FAILED read: " + n.error().message());
                return;
            }
            got.append(reinterpret_cast<const char*>(buf.data()), *n);
            pos += *n;
        }
        p.say(got == data ? "content right" : "content WRONG");
        // A blob named by its digest, checked (OpenSSL) inside the sandbox.
        worker::VerifyingBackend verifying(*backend);
        auto abc = verifying.open("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        p.say(abc ? fmt::format("verified blob of {} bytes", (*abc)->size()) : "FAILED verify: " + abc.error().message());
        auto wrong = verifying.open("sha256:" + std::string(64, '0'));
        p.say(wrong ? "wrong digest accepted?" : fmt::format("wrong digest: errno {}", wrong.error().errnum));
        auto missing = backend->open("no_such_blob");
        p.say(missing ? "missing blob opened?" : fmt::format("missing: errno {}", missing.error().errnum));
    };
    // Every connection is made inside the sandbox. The first request is dropped
    // unanswered, so the worker also retries and connects again there.
    c.while_alive = [&](pid_t) { server.fail_next(1, 0); };
    const Outcome out = c.run(dir);
    INFO("child ", describe_status(out.status), ", report:\n", out.report);
    REQUIRE(WIFEXITED(out.status));
    CHECK(WEXITSTATUS(out.status) == 0);
    CHECK(out.report.find("size 300000\ncontent right\nverified blob of 3 bytes\nwrong digest: errno 5\n"
                          "missing: errno 2\n") != std::string::npos);
    CHECK(server.connections() == 2);
}

TEST_CASE("sandbox (remote): UDP, raw, packet, netlink and unix sockets stay SIGSYS for a remote worker") {
    if (!have_root()) return;
    BlobDir dir;
    const worker::NetworkAccess net{{8080}};
    check_killed(dir, "socket", [] { return ::syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0); }, net);
    check_killed(dir, "socket", [] { return ::syscall(SYS_socket, AF_INET6, SOCK_DGRAM, IPPROTO_UDP); }, net);
    check_killed(dir, "socket", [] { return ::syscall(SYS_socket, AF_INET, SOCK_RAW, IPPROTO_TCP); }, net);
    check_killed(dir, "socket", [] { return ::syscall(SYS_socket, AF_PACKET, SOCK_RAW, 0); }, net);
    check_killed(dir, "socket", [] { return ::syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0); }, net);
    check_killed(dir, "socket", [] { return ::syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0); }, net);
    check_killed(dir, "bind", [] { return ::syscall(SYS_bind, -1, nullptr, 0); }, net);
    check_killed(dir, "listen", [] { return ::syscall(SYS_listen, -1, 0); }, net);
    check_killed(dir, "accept4", [] { return ::syscall(SYS_accept4, -1, nullptr, nullptr, 0); }, net);
    // sendto(MSG_FASTOPEN) would open a connection without connect(), where
    // Landlock's port rule is checked.
    check_killed(dir, "sendto MSG_FASTOPEN", [] { return ::syscall(SYS_sendto, -1, nullptr, 0, MSG_FASTOPEN, nullptr, 0); },
                 net);
    // Socket options beyond curl's two: a classic BPF filter the kernel compiles,
    // IPV6_ADDRFORM and TCP_ULP (use-after-free bugs of their own).
    check_killed(dir, "setsockopt SO_ATTACH_FILTER",
                 [] { return ::syscall(SYS_setsockopt, -1, SOL_SOCKET, SO_ATTACH_FILTER, nullptr, 0); }, net);
    check_killed(dir, "setsockopt IPV6_ADDRFORM",
                 [] { return ::syscall(SYS_setsockopt, -1, IPPROTO_IPV6, IPV6_ADDRFORM, nullptr, 0); }, net);
    check_killed(dir, "setsockopt TCP_ULP", [] { return ::syscall(SYS_setsockopt, -1, IPPROTO_TCP, TCP_ULP, "tls", 3); },
                 net);
    check_killed(dir, "getsockopt TCP_INFO",
                 [] { return ::syscall(SYS_getsockopt, -1, IPPROTO_TCP, TCP_INFO, nullptr, nullptr); }, net);
    // What curl does is let through (EBADF: no socket).
    const Outcome nodelay = run_call(
        dir, "setsockopt TCP_NODELAY", [] { return ::syscall(SYS_setsockopt, -1, IPPROTO_TCP, TCP_NODELAY, nullptr, 0); },
        net);
    INFO("TCP_NODELAY: ", nodelay.report);
    CHECK(nodelay.report.find(fmt::format("calling setsockopt TCP_NODELAY\nreturned -1 errno {}\n", EBADF)) !=
          std::string::npos);
    // And a local-only worker still has no TCP at all.
    check_killed(dir, "socket", [] { return ::syscall(SYS_socket, AF_INET, SOCK_STREAM, IPPROTO_TCP); });
}

TEST_CASE("sandbox (remote): F_SETFL on stdin, stdout or stderr is killed with SIGSYS; on its own sockets it is allowed") {
    if (!have_root()) return;
    BlobDir dir;
    const worker::NetworkAccess net{{8080}};
    // The open files behind fds 0 to 2 are the supervisor's and every worker's: a
    // non-blocking stderr would make their log writes fail.
    check_killed(dir, "fcntl F_SETFL stderr", [] { return ::syscall(SYS_fcntl, 2, F_SETFL, O_NONBLOCK); }, net);
    check_killed(dir, "fcntl F_SETFL stdout", [] { return ::syscall(SYS_fcntl, 1, F_SETFL, O_NONBLOCK); }, net);
    check_killed(dir, "fcntl F_SETFL stdin", [] { return ::syscall(SYS_fcntl, 0, F_SETFL, O_NONBLOCK); }, net);
    // The kernel truncates the fd to 32 bits: 0x1'0000'0002 is stderr too.
    check_killed(dir, "fcntl F_SETFL stderr with high bits",
                 [] { return ::syscall(SYS_fcntl, 0x100000002L, F_SETFL, O_NONBLOCK); }, net);
    const Outcome own = run_call(
        dir, "fcntl F_SETFL socket",
        [] {
            const long fd = ::syscall(SYS_socket, AF_INET, SOCK_STREAM, IPPROTO_TCP);
            if (fd < 0) return fd;
            const long rc = ::syscall(SYS_fcntl, fd, F_SETFL, O_NONBLOCK);
            if (rc < 0) return rc;
            return ::syscall(SYS_fcntl, fd, F_GETFL) & O_NONBLOCK;
        },
        net);
    INFO("own socket: ", own.report);
    CHECK(own.report.find(fmt::format("calling fcntl F_SETFL socket\nreturned {} errno 0\n", O_NONBLOCK)) !=
          std::string::npos);
}

TEST_CASE("sandbox (remote): with Landlock ABI 4+, TCP connect to any port but the allowed ones is EACCES") {
    if (!have_root()) return;
    BlobDir dir;
    // `allowed` plays the blob server, `realm` a token service in allowed_origins.
    testing::HttpTestServer allowed, realm, other;
    REQUIRE((allowed.ok() && realm.ok() && other.ok()));
    auto connect_to = [](std::uint16_t port) {
        const int s = static_cast<int>(::syscall(SYS_socket, AF_INET, SOCK_STREAM, IPPROTO_TCP));
        if (s < 0) return -1L;
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        const long rc = ::syscall(SYS_connect, s, &a, sizeof a);
        const int saved = errno;
        ::close(s);
        errno = saved;
        return rc;
    };
    const worker::NetworkAccess net{{allowed.port(), realm.port()}};
    const Outcome to_other = run_call(dir, "connect", [&] { return connect_to(other.port()); }, net);
    const Outcome to_allowed = run_call(dir, "connect", [&] { return connect_to(allowed.port()); }, net);
    const Outcome to_realm = run_call(dir, "connect", [&] { return connect_to(realm.port()); }, net);
    INFO("other port: ", to_other.report, "\nallowed port: ", to_allowed.report, "\nrealm port: ", to_realm.report);
    REQUIRE(WIFEXITED(to_other.status));
    REQUIRE(WIFEXITED(to_allowed.status));
    REQUIRE(WIFEXITED(to_realm.status));
    CHECK(to_allowed.report.find("calling connect\nreturned 0 errno 0\n") != std::string::npos);
    CHECK(to_realm.report.find("calling connect\nreturned 0 errno 0\n") != std::string::npos);
    const bool abi4 = to_other.report.find("landlock abi 0\n") == std::string::npos &&
                      to_other.report.find("landlock abi 1\n") == std::string::npos &&
                      to_other.report.find("landlock abi 2\n") == std::string::npos &&
                      to_other.report.find("landlock abi 3\n") == std::string::npos;
    if (abi4)
        CHECK(to_other.report.find(fmt::format("calling connect\nreturned -1 errno {}\n", EACCES)) != std::string::npos);
    else
        MESSAGE("Landlock below ABI 4 here: TCP ports are not restricted, only seccomp holds");
}
