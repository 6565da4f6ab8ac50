// Landlock for the worker: reading beneath the blob directory is the only filesystem
// access it keeps, and (where the kernel knows them) TCP, abstract unix sockets and
// signals to processes outside its domain are denied as well. Best effort across ABI
// versions: each right the running kernel handles is denied unless allowed here; a
// kernel without Landlock leaves the other layers (mount namespace, user, seccomp).
#pragma once

#include <string>

#include "common/result.h"

namespace cfs::worker {

struct LandlockOutcome {
    int abi = 0;              // 0: not available
    std::string unavailable;  // why, when abi == 0
};

// The caller must already have no_new_privs. `readable_dir` stays readable
// (files and listings) beneath; any other path is refused with EACCES, whichever fd
// it is reached through.
[[nodiscard]] Result<LandlockOutcome> restrict_to_reading_beneath(int readable_dir);

}  // namespace cfs::worker
