// Culling: cachefiles stops writing into cache files once the cache's filesystem has
// less free space (or free files) than its stop limit, and leaves it to its daemon
// to remove objects no image uses; until then every READ that needs a write fails,
// and its reader gets EIO. So the supervisor checks the cache's filesystem every
// kCullCheckInterval and, below the cull limit, culls cache files oldest first (by
// access time, as cachefilesd does) through the device ("cull <name>" from the
// file's directory) until it is back at the run limit. The kernel refuses to cull a
// file an object has open (EBUSY), so what mounted images use stays. The pass runs
// in a child process (cull_pass.h).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/result.h"

namespace cfs::supervisor {

inline constexpr auto kCullCheckInterval = std::chrono::seconds(1);

// The device commands that give the kernel `limits` (common/config.h) before "bind".
// The kernel checks each command against the other two limits as they are at that
// moment, so the order is one every step of which is valid from any valid limits
// (its own defaults, 7/5/1%, among them) to any others, 0 <= stop < cull < run <= 99.
// Blocks, then files.
[[nodiscard]] std::vector<std::string> cull_limit_commands(const CullLimits& limits);

// The limits the supervisor culls by: the config's, with `stop` the one the kernel
// was bound with when that is known (a device from the fd store keeps the refusal
// limit of the start that bound it), and cull and run raised above it where the
// config's are not: culling below where the kernel refuses writes would never
// happen in time.
[[nodiscard]] CullLimits effective_cull_limits(const CullLimits& configured, std::optional<unsigned> bound_stop);

// "3%", or, where the cache's binding did not record it, "the limit it was bound
// with": how logs and `cfsupervisor status` name the refusal limit.
[[nodiscard]] std::string refusal_limit_text(std::optional<unsigned> refuse_below_percent);

struct CacheFile {
    std::string dir;   // its directory, absolute
    std::string name;  // its name in it
    std::int64_t atime_ns = 0;
    std::uint64_t bytes = 0;  // allocated on disk
};

// The cache files under `root` (a cache's cache/ directory), not following symlinks
// (the cache is root's, but a link in it must not lead the walk elsewhere): all of
// them, or where there are more than `max_files`, the `max_files` least recently
// accessed (`capped`). The whole tree is walked; memory is bounded by `max_files`.
struct CacheWalk {
    std::vector<CacheFile> files;  // in no particular order
    bool capped = false;           // more files than max_files: the newest left out
};
// A cache holds one file per object; a pass looks at this many at most.
inline constexpr std::size_t kMaxFilesPerPass = 200'000;
[[nodiscard]] Result<CacheWalk> oldest_cache_files(const std::string& root, std::size_t max_files);

struct CullReport {
    unsigned culled = 0;
    std::uint64_t freed_bytes = 0;
    unsigned in_use = 0;  // refused by the kernel: an object has it open
    unsigned gone = 0;    // removed meanwhile (ESTALE, ENOENT)
    unsigned failed = 0;  // refused otherwise (the kernel says EIO for most): skipped
    bool walk_capped = false;  // the cache held more files than one pass looks at (the oldest were)
};

// What must be freed to be back at a limit: bytes and files (both 0: there).
struct CullTarget {
    std::uint64_t bytes = 0;
    std::uint64_t files = 0;
    [[nodiscard]] bool reached() const { return bytes == 0 && files == 0; }
};

// Culls `files` oldest first with `cull` (0, or an errno: EBUSY in use, ESTALE or
// ENOENT gone, anything else a failure, skipped) until the culled files add up to
// `target`. Counted rather than asked of the filesystem after each cull: some free
// their blocks later (XFS), and asking would cull far more than needed. Stops after
// kMaxCullFailuresInARow failures in a row (the device, not a file, is at fault);
// `first_failure` describes the first.
inline constexpr unsigned kMaxCullFailuresInARow = 16;
[[nodiscard]] CullReport cull_oldest(std::vector<CacheFile> files, const std::function<int(const CacheFile&)>& cull,
                                     CullTarget target, std::string& first_failure);

// What the filesystem of `path` lacks to have `percent` of its blocks (available to
// unprivileged users, as cachefiles counts) and of its files free.
[[nodiscard]] Result<CullTarget> room_needed(const std::string& path, unsigned percent);
// Percent of its blocks (available to unprivileged users) and files free; files are
// nullopt on a filesystem without an inode count.
struct FreeRoom {
    double blocks = 0;
    std::optional<double> files;
};
[[nodiscard]] Result<FreeRoom> free_room(const std::string& path);
// Whether it has that much free (to decide to start a pass).
[[nodiscard]] Result<bool> free_at_least(const std::string& path, unsigned percent);

struct CullOutcome {
    CullReport report;
    bool still_short = false;  // freed less than was lacking of `run_percent`
    std::string failure;       // the first failed cull, if any
};

// The pass: walks `cache_dir`/cache and culls through `device` until the culled
// files make up what the filesystem lacked of `run_percent`. Changes the process's
// working directory (cull resolves names in it): run in a child (cull_pass.h).
[[nodiscard]] Result<CullOutcome> cull_to_run_limit(int device, const std::string& cache_dir,
                                                    unsigned run_percent);

}  // namespace cfs::supervisor
