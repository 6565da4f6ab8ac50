// What `cfsupervisor status` shows: a plain snapshot of the supervisor's state, and
// its two renderings (text for people, JSON for tools; docs/status.md has the JSON
// schema). The snapshot is taken in the event loop; rendering has no side effects,
// so it is tested on hand-made snapshots.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cfs::supervisor {

// What workers served (their statistics pages, common/worker_stats.h), since this
// supervisor started: dead workers' figures are kept.
struct ServedFigures {
    std::uint64_t open = 0, close = 0, read = 0, other = 0;
    std::uint64_t bytes = 0;  // written into cache files
    std::uint64_t read_samples = 0;
    // READ latency percentiles, microseconds; unset without a READ.
    std::optional<double> read_p50_us, read_p90_us, read_p99_us;
    std::uint64_t fetch_errors = 0;  // failed attempts to fetch from blobs.url
};

struct InFlightRequest {
    unsigned worker = 0;
    pid_t pid = -1;
    std::string opcode;  // "READ", ...
    std::uint32_t object_id = 0;
    std::string object;  // printable "volume blob" when the supervisor knows the object
    double age_s = 0;
    bool stuck = false;  // older than stuck_after_s
};

struct WorkerStatus {
    unsigned id = 0;
    pid_t pid = -1;  // -1: no process (waiting to restart)
    std::string state;
    double uptime_s = 0;
    std::uint64_t restarts = 0;
    unsigned consecutive_failures = 0;
    std::string last_exit;                   // empty: never exited
    std::optional<double> restart_in_s;      // set while waiting to restart
    // This slot's workers, alive and dead (no percentiles per worker).
    ServedFigures served;
    bool stats_ok = true;  // false: the running worker's page header was overwritten
    // Objects whose anon fd it holds a copy of, as far as the supervisor knows: those
    // it opened, asked for (ObjectQuery) or was handed as a spare (ObjectShare).
    std::size_t objects_held = 0;
};

struct StatusSnapshot {
    std::string version;
    std::string state;  // "serving", "starting", "failover", "crash loop", "stopping"
    double uptime_s = 0;
    std::string cache_dir;
    std::string cache_tag;
    // The cache filesystem's free room, percent (blocks available to unprivileged
    // users, as cachefiles counts them; files: nullopt where it has no inode count),
    // and the limits: culls below `cull_below` up to `cull_until`; cachefiles refuses
    // writes below `refuse_below` (nullopt: not recorded when it was bound).
    struct CacheRoom {
        double blocks_free = 0;
        std::optional<double> files_free;
    };
    std::optional<CacheRoom> cache_room;  // nullopt: statvfs failed
    unsigned cull_below_percent = 0;
    unsigned cull_until_percent = 0;
    std::optional<unsigned> refuse_below_percent;
    std::string blob_dir;
    std::string blob_url;  // empty: none
    // [[volume]] tables: their blobs come from these, never from blob_dir/blob_url.
    struct VolumeStore {
        std::string name;  // the volume is "erofs,<name>"
        std::string dir;   // empty: none
        std::string url;   // empty: none
    };
    std::vector<VolumeStore> volume_stores;
    std::string device_origin;  // "bound" or "fd store"
    bool in_fd_store = false;
    unsigned workers_wanted = 0;
    unsigned spares_wanted = 0;
    std::vector<WorkerStatus> workers;
    std::map<std::string, unsigned> objects_per_volume;
    // Since this supervisor started: copies of anon fds handed to spares ahead of
    // need (ObjectShare), and objects workers had to ask for (ObjectQuery).
    std::uint64_t objects_shared = 0;
    std::uint64_t object_queries = 0;
    std::uint64_t failovers = 0;
    std::optional<double> last_recovery_ms;  // death to first request answered
    ServedFigures served;                    // every worker
    std::vector<InFlightRequest> in_flight;  // oldest first
    double stuck_after_s = 0;
};

[[nodiscard]] std::string render_text(const StatusSnapshot& s);
[[nodiscard]] std::string render_json(const StatusSnapshot& s);

}  // namespace cfs::supervisor
