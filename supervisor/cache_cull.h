// Culling: cachefiles stops writing into cache files once the cache's filesystem has
// less free space (or free files) than its stop limit, and leaves it to its daemon
// to remove objects no image uses; until then every READ that needs a write fails,
// and its reader gets EIO. So the supervisor checks the cache's filesystem every
// kCullCheckInterval and, below the cull limit, culls cache files oldest first (by
// access time, as cachefilesd does) through the device ("cull <name>" from the
// file's directory) until it is back at the run limit. The kernel refuses to cull a
// file an object has open (EBUSY), so what mounted images use stays.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"

namespace cfs::supervisor {

inline constexpr auto kCullCheckInterval = std::chrono::seconds(1);

// Percent of the filesystem's blocks, and of its files, left free: culling starts
// below `cull` and goes on to `run`; the kernel refuses writes below `stop`. Set at
// bind ("brun 10%" and so on), the kernel's own defaults, so that the two agree.
struct CullLimits {
    unsigned run = 10;
    unsigned cull = 7;
    unsigned stop = 3;
};
inline constexpr CullLimits kCullLimits{};

// The device commands that give the kernel kCullLimits.
[[nodiscard]] std::vector<std::string> cull_limit_commands();

struct CacheFile {
    std::string dir;   // its directory, absolute
    std::string name;  // its name in it
    std::int64_t atime_ns = 0;
    std::uint64_t bytes = 0;  // allocated on disk
};

struct CullReport {
    unsigned culled = 0;
    std::uint64_t freed_bytes = 0;
    unsigned in_use = 0;  // refused by the kernel: an object has it open
    unsigned gone = 0;    // removed meanwhile (ESTALE, ENOENT)
};

// Culls `files` oldest first with `cull` (0, or an errno: EBUSY in use, ESTALE or
// ENOENT gone; anything else ends the pass as an Error) until `enough` says so.
[[nodiscard]] Result<CullReport> cull_oldest(std::vector<CacheFile> files,
                                             const std::function<int(const CacheFile&)>& cull,
                                             const std::function<bool()>& enough);

// Whether the filesystem of `path` has at least `percent` of its blocks and of its
// files free (for `cull_oldest`'s `enough`, and to decide to start).
[[nodiscard]] Result<bool> free_at_least(const std::string& path, unsigned percent);

// The real thing: when `cache_dir`'s filesystem is below kCullLimits.cull, walks
// `cache_dir`/cache and culls through `device` down to kCullLimits.run. Leaves the
// process's working directory at "/". A report of nothing done when not needed.
[[nodiscard]] Result<CullReport> cull_if_needed(int device, const std::string& cache_dir, bool& was_needed);

}  // namespace cfs::supervisor
