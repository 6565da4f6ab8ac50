// A blob store's credentials: "user:password" for the blob server or its token service
// (worker/registry_auth.h), read by the supervisor at start from a file that only
// root may read, and handed to each worker in Init. Never in a log line, in status,
// in an environment or on a command line: errors about the file name the file and
// what is wrong with it, never its contents.
#pragma once

#include <string>

#include "common/result.h"

namespace cfs::supervisor {

inline constexpr std::size_t kMaxCredentialsBytes = 512;

// The file must be a regular file owned by root with no permission for group or
// others (0600 or 0400), and hold one line "user:password" (a trailing newline is
// dropped) of at most kMaxCredentialsBytes bytes, without control characters.
// `key` names the setting in errors: "blobs.credentials", `volume "img_a" credentials`.
[[nodiscard]] Result<std::string> read_blob_credentials(const std::string& path,
                                                        std::string_view key = "blobs.credentials");

}  // namespace cfs::supervisor
