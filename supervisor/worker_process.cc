#include "supervisor/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "supervisor/worker_user.h"

#ifndef CFS_WORKER_INSTALL_PATH
#error "CFS_WORKER_INSTALL_PATH must name the installed worker binary"
#endif

namespace cfs::supervisor {
namespace {
constexpr int kWorkerIpcFd = 3;

std::string own_directory() {
    std::array<char, PATH_MAX> buf{};
    ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    if (n <= 0) return {};
    std::string path(buf.data(), static_cast<std::size_t>(n));
    return path.substr(0, path.rfind('/'));
}
}  // namespace

Result<unique_fd> open_worker_executable() {
    for (const std::string& candidate :
         {own_directory() + "/cfsupervisor-worker", std::string(CFS_WORKER_INSTALL_PATH)}) {
        unique_fd fd(::open(candidate.c_str(), O_PATH | O_CLOEXEC));
        if (fd) return fd;
    }
    return sys_error(fmt::format("finding the worker binary (looked next to cfsupervisor and at {})",
                                 CFS_WORKER_INSTALL_PATH));
}

Result<SpawnedWorker> spawn_worker(int executable_fd, std::string_view user) {
    auto ids = resolve_worker_user(user);
    if (!ids) return std::move(ids).error();
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
        return sys_error("creating a worker socket pair");
    unique_fd ours(pair[0]), theirs(pair[1]);
    if (::fcntl(ours.get(), F_SETFL, O_NONBLOCK) < 0) return sys_error("configuring the worker socket");

    // The worker's stdin and stdout: it reads nothing from the supervisor's stdin and
    // writes nothing but log lines, which go to stderr (kept: the terminal or the
    // journal stream).
    unique_fd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY));
    if (!dev_null) return sys_error("opening /dev/null for a worker's stdin and stdout");

    const pid_t parent = ::getpid();
    const std::string parent_arg = std::to_string(parent);
    const std::string fd_arg = std::to_string(kWorkerIpcFd);
    const std::string uid_arg = std::to_string(ids->uid);
    const std::string gid_arg = std::to_string(ids->gid);

    const pid_t pid = ::fork();
    if (pid < 0) return sys_error("forking a worker");
    if (pid == 0) {
        // Child: only async-signal-safe calls from here to exec. Everything the worker
        // keeps first moves above the low fds, so the dup2s below cannot clobber one
        // another; the executable's copy stays close-on-exec (the worker never sees
        // it), dup2 clears the flag on fds 0, 1 and 3, and everything else closes.
        constexpr int kAboveLowFds = 10;
        const int exe = ::fcntl(executable_fd, F_DUPFD_CLOEXEC, kAboveLowFds);
        const int sock = ::fcntl(theirs.get(), F_DUPFD_CLOEXEC, kAboveLowFds);
        const int null = ::fcntl(dev_null.get(), F_DUPFD_CLOEXEC, kAboveLowFds);
        if (exe < 0 || sock < 0 || null < 0) ::_exit(127);
        if (::dup2(null, STDIN_FILENO) < 0 || ::dup2(null, STDOUT_FILENO) < 0 || ::dup2(sock, kWorkerIpcFd) < 0)
            ::_exit(127);
        // Every fd from kAboveLowFds on was taken when exe was, so sock and null are
        // above exe and close with the second range.
        ::syscall(SYS_close_range, kWorkerIpcFd + 1, exe - 1, 0);
        ::syscall(SYS_close_range, exe + 1, ~0U, 0);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        const char* argv[] = {"cfsupervisor-worker", "--ipc-fd", fd_arg.c_str(), "--parent-pid", parent_arg.c_str(),
                              "--uid", uid_arg.c_str(), "--gid", gid_arg.c_str(), nullptr};
        const char* envp[] = {nullptr};
        ::syscall(SYS_execveat, exe, "", argv, envp, AT_EMPTY_PATH);
        ::_exit(127);
    }
    auto pidfd = pidfd_for_child(pid, "watching a new worker");
    if (!pidfd) return std::move(pidfd).error();
    return SpawnedWorker{pid, std::move(*pidfd), std::move(ours)};
}

Result<unique_fd> pidfd_for_child(pid_t pid, std::string_view what) {
    unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (pidfd) return pidfd;
    const Error e = sys_error(std::string(what));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return e;
}

bool has_exited(int pidfd) {
    siginfo_t info{};
    return ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0;
}

std::string describe_exit(int code, int status) {
    switch (code) {
        case CLD_EXITED: return fmt::format("exited with status {}", status);
        case CLD_KILLED: return fmt::format("killed by signal {} ({})", status, ::strsignal(status));
        case CLD_DUMPED:
            return fmt::format("killed by signal {} ({}), core dumped", status, ::strsignal(status));
        default: return fmt::format("ended (code {}, status {})", code, status);
    }
}

}  // namespace cfs::supervisor
