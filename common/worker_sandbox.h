// What a worker's sandbox consists of, besides its seccomp policy
// (common/seccomp_policy.h): worker/sandbox.cc applies these tables and
// `cfsupervisor check-policy` prints them, so the two cannot drift apart.
// policy/README.md explains the whole sandbox.
#pragma once

#include <sched.h>
#include <sys/resource.h>

#include <string_view>

namespace cfs::sandbox {

struct Limit {
    int resource;
    std::string_view name;
    rlim_t value;  // soft and hard
    std::string_view why;
};

// A worker holds two fds per object it serves (the anon fd and the blob's fd), and
// as many per copy of an anon fd handed to it ahead of need as a spare (a local
// blob is opened on arrival), at most wire::kMaxSharedObjects (1024,
// common/worker_protocol.h).
inline constexpr Limit kLimits[] = {
    {RLIMIT_CORE, "RLIMIT_CORE", 0, "no core files: a crash loop must not fill a disk"},
    {RLIMIT_NPROC, "RLIMIT_NPROC", 0, "no new processes or threads"},
    {RLIMIT_NOFILE, "RLIMIT_NOFILE", 6144,
     "two fds per object served, up to 2000 (RequestHandler::kMaxServedObjects), and two per copy handed over "
     "ahead of need, up to 1024"},
    {RLIMIT_DATA, "RLIMIT_DATA", rlim_t{256} << 20, "256 MiB of heap and private mappings; a worker uses a few MiB"},
};

struct Namespace {
    int flag;
    std::string_view name;
    std::string_view why;
};

inline constexpr Namespace kNamespaces[] = {
    {CLONE_NEWNS, "mount",
     "root and working directory are an empty read-only tmpfs; the blob directory is bind-mounted read-only "
     "at /blobs (the directories of [[volume]] stores at /volumes/1, 2, ...), the only other things in it; every "
     "mount copied from the supervisor's namespace is detached, so no image stays mounted there after its umount"},
    {CLONE_NEWIPC, "ipc", "no System V IPC or POSIX message queues shared with anyone"},
    {CLONE_NEWUTS, "uts", "its host name is its own"},
    {CLONE_NEWNET, "network",
     "no network interface, not even loopback; no abstract unix sockets of the host (local-only workers: a worker "
     "with blobs.url keeps the host's, see 'remote')"},
};

// Where the blob directory appears in the worker's root; the directories of
// [[volume]] stores appear as kVolumeMountDir/1, 2, ...
inline constexpr std::string_view kBlobMountPoint = "blobs";
inline constexpr std::string_view kVolumeMountDir = "volumes";

// For check-policy; worker/sandbox.cc and worker/landlock.cc are what they describe.
inline constexpr std::string_view kPrivileges =
    "no supplementary groups; every capability set empty, the bounding and ambient sets included; "
    "no_new_privs; not dumpable";
inline constexpr std::string_view kLandlock =
    "reading files and directories beneath /blobs (and /volumes/N), nothing else: every filesystem right of the kernel's "
    "Landlock ABI is denied elsewhere, so are TCP bind and connect (ABI 4+), abstract unix sockets and "
    "signals to processes outside the worker (ABI 6+); skipped, and logged, without Landlock";

// What differs for a worker with a remote blob source (blobs.url): worker/sandbox.h.
inline constexpr std::string_view kRemote =
    "a remote worker keeps the host's network namespace (it connects to the blob server); TCP to the ports of the "
    "server and of blobs.allowed_origins only where Landlock has ABI 4+; no DNS (the supervisor resolves the hosts; "
    "no /etc/resolv.conf in the worker's root, no UDP sockets); the CA bundle is read before the sandbox; the "
    "seccomp rules below are added";

}  // namespace cfs::sandbox
