// Test builds only (CFS_FAULT_INJECTION): a worker dealt the `hostile` fault point
// plays a compromised worker. Once in its real sandbox, and accepted by the
// supervisor (it said Ready), it runs the attack script "hostile.script" from its
// blob directory, one attack per line:
//
//     <attack> [<arguments>] => <expected outcome>
//
// and logs each outcome ("hostile: ... as expected" or "... UNEXPECTED"), so the VM
// scenario (tests/vm/scenarios/hostile_worker.sh) can check every row of
// docs/threat-model.md against the real kernel. Outcomes are an errno name (EBUSY),
// "ok", or "dies": the attack must end the worker (SIGSYS, or the supervisor killing
// it), so it is the script's last line. Attacks:
//
//   device <command>          write(2) the command to the cachefiles device fd
//   open <path>               openat(AT_FDCWD, path, O_RDONLY)
//   openat-blobs <path>       openat(blob directory fd, path, O_RDONLY | O_NOFOLLOW)
//   read-blob <name>          open a blob and read its first byte (the worker's job)
//   send-hex <hex>            a raw datagram to the supervisor
//   send-opened-with <fd>     ObjectOpened carrying the device, blobs or stderr fd
//   send-fds <n>              a Ready message carrying n fds
//   send-big <bytes>          an oversized datagram
//   flood-query <n>           n ObjectQuery messages, never reading the answers
//   syscall <name>            socket, kill-supervisor, ptrace-supervisor, execve,
//                             fchdir-blobs, mount, setuid, unshare-user
//   ignore-pause              from now on, answer the supervisor's Pause by hanging
//                             instead of with Paused (hostile_ignores_pause)
//   close-socket-and-hang     close the socket to the supervisor, then hang (never
//                             exit)
//
// The line "serve" is implied at the end: a worker the script did not end goes on
// serving, as a compromised worker keeping its cover would.
#pragma once

#include <sys/types.h>

namespace cfs::testing {

struct HostileTarget {
    int supervisor_socket = -1;
    int device = -1;
    int blob_dir = -1;
    pid_t supervisor = 0;
};

// Runs the script; returns if no attack ended the worker.
void run_hostile_script(const HostileTarget& target);

// Whether the script said ignore-pause (worker/main.cc then hangs on Pause).
[[nodiscard]] bool hostile_ignores_pause();

}  // namespace cfs::testing
