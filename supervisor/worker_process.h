// Starting one worker process: a socketpair, fork, and exec of the worker binary
// through an fd opened once at start-up (so a later restart does not depend on the
// filesystem path still naming the same file). The worker starts as root with the
// ids of its user on its command line, and sandboxes itself once Init gave it its
// fds (worker/sandbox.h); it is dynamically linked, so it must start in the
// supervisor's filesystem view and leave it itself.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cfs::supervisor {

struct SpawnedWorker {
    pid_t pid = -1;
    unique_fd pidfd;   // readable when the process exits
    unique_fd socket;  // our end of the SOCK_SEQPACKET pair, non-blocking
};

// The worker binary next to our own executable (a build tree) or in libexec.
[[nodiscard]] Result<unique_fd> open_worker_executable();

// `user`: config workers.user, resolved at each start (supervisor/worker_user.h).
[[nodiscard]] Result<SpawnedWorker> spawn_worker(int executable_fd, std::string_view user);

// Whether the process behind `pidfd` has exited, without reaping it (its pidfd
// stays readable, and waitid() still reports how it ended).
[[nodiscard]] bool has_exited(int pidfd);
// A pidfd for `pid`, a child just forked; if none can be had, the child is killed
// and reaped, and the error says it was `what` (e.g. "watching a new worker").
[[nodiscard]] Result<unique_fd> pidfd_for_child(pid_t pid, std::string_view what);

// Human-readable exit reason from a waitid() result: "exited with status 1",
// "killed by signal 9 (Killed)".
[[nodiscard]] std::string describe_exit(int code, int status);

}  // namespace cfs::supervisor
