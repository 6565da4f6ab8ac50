// MESSAGE_IDs of the supervisor's key events in the journal, so that they can be
// found without matching text: journalctl MESSAGE_ID=<id>. Fixed forever once
// released; made with `systemd-id128 new`. Only the supervisor logs to the journal:
// workers cannot reach its socket from their sandbox and write to stderr, which
// systemd puts in the unit's journal as plain lines.
#pragma once

#include <string_view>

namespace cfs::supervisor::ids {

// A worker exited or was killed (WORKER_PID: the dead worker).
inline constexpr std::string_view kWorkerDied = "9c030c31deb54f55ad5cbf82632aeb9b";
// A failover finished: no worker held a request, `restore` was written, workers resume.
inline constexpr std::string_view kFailoverDone = "69bc66d3d2064fb5a79239c26c0982a3";
// A worker broke the protocol and is killed (supervisor/worker_dispatch.cc).
inline constexpr std::string_view kProtocolViolation = "e7b21e0f957e42fca08ee51955570445";

}  // namespace cfs::supervisor::ids
