// A small file read whole: the config, a seccomp policy, /proc/self/mountinfo.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace cfs {

// The contents of `path`, at most `max_bytes` of them. Errors say "opening WHAT",
// "reading WHAT", "reading WHAT: not a regular file" (EINVAL; never blocks on a FIFO)
// or "reading WHAT: larger than N bytes" (EFBIG), with errno.
[[nodiscard]] Result<std::string> read_file_text(const std::string& path, std::string_view what,
                                                 std::size_t max_bytes);

}  // namespace cfs
