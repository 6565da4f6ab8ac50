// supervisor/worker_process.h: telling that a worker has exited without reaping it.
#include <doctest/doctest.h>

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/unique_fd.h"
#include "supervisor/worker_process.h"

using cfs::unique_fd;
using cfs::supervisor::has_exited;

namespace {

struct Child {
    pid_t pid = -1;
    unique_fd pidfd;
};

// A child that exits with status 3 after `exit_after_ms` (< 0: never).
Child start(int exit_after_ms) {
    Child c;
    c.pid = ::fork();
    REQUIRE(c.pid >= 0);
    if (c.pid == 0) {
        if (exit_after_ms >= 0) {
            ::usleep(static_cast<useconds_t>(exit_after_ms) * 1000);
            ::_exit(3);
        }
        for (;;) ::pause();
    }
    c.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, c.pid, 0)));
    REQUIRE(c.pidfd);
    return c;
}

bool readable_within(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
}

}  // namespace

TEST_CASE("has_exited: false while the process runs, true once it has exited, and it stays unreaped") {
    Child running = start(-1);
    CHECK_FALSE(has_exited(running.pidfd.get()));
    REQUIRE(::kill(running.pid, SIGKILL) == 0);
    REQUIRE(readable_within(running.pidfd.get(), 5000));
    CHECK(has_exited(running.pidfd.get()));
    // Asking twice reaps nothing: the supervisor's own waitid still learns how it ended.
    CHECK(has_exited(running.pidfd.get()));
    siginfo_t info{};
    REQUIRE(::waitid(P_PIDFD, static_cast<id_t>(running.pidfd.get()), &info, WEXITED) == 0);
    CHECK(info.si_code == CLD_KILLED);
    CHECK(info.si_status == SIGKILL);

    Child exited = start(0);
    REQUIRE(readable_within(exited.pidfd.get(), 5000));
    CHECK(has_exited(exited.pidfd.get()));
    REQUIRE(::waitid(P_PIDFD, static_cast<id_t>(exited.pidfd.get()), &info, WEXITED) == 0);
    CHECK(info.si_code == CLD_EXITED);
    CHECK(info.si_status == 3);
}
