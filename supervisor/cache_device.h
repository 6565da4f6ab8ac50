// Opening and binding /dev/cachefiles, with the kernel's refusals translated into
// what an operator has to do about them.
#pragma once

#include <string>
#include <string_view>

#include "common/config.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace cfs::supervisor {

inline constexpr const char* kDevicePath = "/dev/cachefiles";

// Opens the device, creates the cache directory if it is missing (its parent must
// exist), and writes `dir`, `tag`, the cull limits and `bind ondemand`. The kernel
// turns the limits into block and file counts at bind: they cannot change while it
// stays bound. Errors are complete sentences.
[[nodiscard]] Result<unique_fd> bind_cache(const std::string& cache_dir, std::string_view tag,
                                           const CullLimits& limits);

// Writes `restore`: every request the kernel still holds is delivered again.
[[nodiscard]] Status restore_requests(int device);

}  // namespace cfs::supervisor
