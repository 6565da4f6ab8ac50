// Blob names come from the kernel's cookie key, which the mount's fsid=/device=
// options set: i.e. from whoever may mount. A name must be a plain file name so it
// can never reach outside the blob directory, whatever the backend does with it.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/result.h"

namespace cfs {

inline constexpr std::size_t kMaxBlobNameLength = 255;  // NAME_MAX

// Ok, or an Error with EINVAL/ENAMETOOLONG saying what is wrong with the name.
[[nodiscard]] Status validate_blob_name(std::string_view name);

}  // namespace cfs
