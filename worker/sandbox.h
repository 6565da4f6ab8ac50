// The worker's sandbox. A worker enters it once, after Init (it needs the fds Init
// carries) and before it reads any request; there is no way out and no way to turn
// it off. In this order, each step fatal if it fails:
//   1. resource limits (common/worker_sandbox.h: no core files, no new processes,
//      bounded fds and heap)
//   2. no_new_privs
//   3. new mount, IPC, UTS and (unless it fetches remote blobs) network namespaces; every
//      mount copied from the supervisor's namespace detached (an image unmounted later
//      must not stay mounted in the worker's); root and working directory become
//      an empty read-only tmpfs holding only the blob directory, read-only, at /blobs (and
//      the directories of [[volume]] stores at /volumes/1, 2, ...)
//      (the device's cull/inuse commands resolve paths against the writer's working
//      directory: a worker's has nothing in it)
//   4. the unprivileged user: the bounding and ambient capability sets emptied,
//      supplementary groups dropped, gid and uid switched, every capability cleared
//      (and checked), not dumpable
//   5. Landlock: reading beneath those directories is the only filesystem access left (best
//      effort: skipped, and said so, where the kernel has no Landlock)
//   6. seccomp: the policy (common/seccomp_policy.h); anything else kills the process
// It starts as root: steps 3 and 4 need CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID and
// CAP_SETPCAP, and CAP_SYS_CHROOT when the root filesystem is an initramfs (which
// pivot_root cannot leave). policy/README.md explains each layer.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "common/result.h"
#include "common/seccomp_policy.h"
#include "common/unique_fd.h"
#include "worker/landlock.h"

namespace cfs::worker {

struct SandboxUser {
    uid_t uid = 0;  // neither may be 0
    gid_t gid = 0;
};

struct Sandboxed {
    // The blob directory as the worker reaches it from now on: its read-only bind
    // mount at /blobs. The fd enter_sandbox was given is closed.
    unique_fd blob_dir;
    // The same for each of `volume_dirs`, in order (empty where it was given an empty
    // fd), mounted at /volumes/1, 2, ...
    std::vector<unique_fd> volume_dirs;
    LandlockOutcome landlock;
};

// A worker with a remote blob source (blobs.url) keeps the host's network namespace
// (it must reach the blob server); Landlock (ABI 4+) then allows TCP connect to
// `connect_ports` only (the blob server's, and those of blobs.allowed_origins: its
// token service, the blob store it redirects to), and its seccomp policy is the base one extended with
// policy/worker-remote.seccomp (the caller passes it). Local-only workers get a new,
// empty network namespace.
struct NetworkAccess {
    std::vector<std::uint16_t> connect_ports;
};

// `volume_dirs`: the directories of the [[volume]] stores, in store order; an
// empty fd for a store that has none
// (common/config.h), mounted and readable like the blob directory.
[[nodiscard]] Result<Sandboxed> enter_sandbox(unique_fd blob_dir, SandboxUser user, const seccomp::Policy& policy,
                                              std::optional<NetworkAccess> network = {},
                                              std::vector<unique_fd> volume_dirs = {});

}  // namespace cfs::worker
