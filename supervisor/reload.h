// `cfsupervisor reload` and SIGHUP: what a new version of the config file changes,
// and whether the running daemon can take it. The decision is a pure function of
// the two configs (tested on hand-made ones); supervisor.cc applies it.
//
// - Live: log.level (the supervisor at once; workers started from then on),
//   workers.read_ahead_kib (workers started from then on: it travels in Init, and
//   a running worker's windows are its own business; `restart-workers` applies it
//   to all),
//   workers.count and workers.spares (workers are started, or paused and let go),
//   control.group (who may read status from then on),
//   cache.cull_below_percent and cull_until_percent (the supervisor's next checks).
// - Live, with a rolling restart: workers.user. A worker switches user once, in its
//   sandbox, so every running worker is replaced (as `restart-workers` does).
// - Refused, naming the key: cache.dir, cache.tag, cache.refuse_below_percent (the
//   kernel keeps the cache bound with them, across restarts too, through the fd
//   store: they take a stop and a start), blobs.dir (opened once at start: a restart), blobs.url (objects already
//   open were sized by the old source, and its host is resolved once, at start: a
//   restart), testing.fault_file.
//   A refused reload changes nothing, not even the live keys.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/config.h"

namespace cfs::supervisor {

struct ReloadPlan {
    // One line per key that cannot change while running: the key, old and new
    // values, and what applies it.
    std::vector<std::string> refused;
    // One entry per key that changes: "workers.count 1 -> 2".
    std::vector<std::string> changes;
    bool log_level = false;
    bool read_ahead = false;     // workers started from now on
    bool workers = false;        // count or spares
    bool control_group = false;
    bool cull_limits = false;    // when the supervisor culls
    bool worker_user = false;    // needs every worker replaced

    [[nodiscard]] bool accepted() const { return refused.empty(); }
};

// `bound_refuse_below`: the refusal limit the kernel was bound with, if known; a
// config that goes back to it (after a restart that could not apply its own) is
// accepted.
[[nodiscard]] ReloadPlan plan_reload(const Config& running, const Config& next,
                                     std::optional<unsigned> bound_refuse_below = std::nullopt);

}  // namespace cfs::supervisor
