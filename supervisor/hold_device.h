// A restarted supervisor that cannot start while the device came from systemd's fd
// store: the config was made invalid since, the workers' user or the control group
// is gone, a registry host does not resolve. Exiting would end the unit, systemd 252
// would drop its fd store, and the cache with it: every mounted image's reads would
// fail with EIO. So the supervisor holds the device instead, says why (the log,
// systemd's STATUS=, and the answer to every control-socket request), and tries to
// start again every kHoldRetry and at SIGHUP, until it can or is told to stop.
// Readers wait meanwhile: their requests stay queued in the kernel, and `restore`
// delivers the ones a dead worker had taken once the supervisor starts.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "supervisor/control_server.h"

namespace cfs::supervisor {

inline constexpr auto kHoldRetry = std::chrono::seconds(10);

// How long root's `reload` (`systemctl reload`) waits for the next start's outcome
// (under the CLI's own 30 s).
inline constexpr auto kHoldReloadAnswerWithin = std::chrono::seconds(25);

struct HoldOutcome {
    enum What {
        retry,  // kHoldRetry passed, SIGHUP, or root's `reload`: try to start again
        stop,   // SIGTERM or SIGINT
    } what = retry;
    // Root's `reload` that asked for this retry: answered (ControlServer::answer) with
    // whether the start that follows got past what stopped this one.
    std::optional<ControlServer::ClientId> reload_client;
};

// Waits as above, pinging systemd's watchdog and answering `control`'s clients (if
// any) with `why`, except root's `reload`, which retries at once. It tells systemd
// the unit is up (READY=1; again on each call, which systemd takes as it is), so
// that its start does not time out and drop the fd store.
// `retry_after` is kHoldRetry but in tests.
[[nodiscard]] HoldOutcome hold_device(std::string_view why, ControlServer* control,
                                      std::chrono::milliseconds retry_after = kHoldRetry);

}  // namespace cfs::supervisor
