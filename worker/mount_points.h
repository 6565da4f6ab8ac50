// The mounts a worker's new mount namespace copied from the supervisor's, read from
// /proc/self/mountinfo: the worker detaches all of them but the root before it builds
// its own (worker/sandbox.cc).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cfs::worker {

// Every mount point in `mountinfo` (the text of /proc/PID/mountinfo) other than "/",
// unescaped (the kernel writes a space as \040), once each, shortest first: a mount
// comes before the mounts beneath it. Lines without a mount point field are skipped.
[[nodiscard]] std::vector<std::string> mount_points_below_root(std::string_view mountinfo);

}  // namespace cfs::worker
