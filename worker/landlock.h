// Landlock for the worker: reading beneath the blob directory is the only filesystem
// access it keeps, and (where the kernel knows them) TCP, abstract unix sockets and
// signals to processes outside its domain are denied as well. Best effort across ABI
// versions: each right the running kernel handles is denied unless allowed here; a
// kernel without Landlock leaves the other layers (mount namespace, user, seccomp).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "common/result.h"

namespace cfs::worker {

struct LandlockOutcome {
    int abi = 0;              // 0: not available
    std::string unavailable;  // why, when abi == 0
};

// The caller must already have no_new_privs. Each of `readable_dirs` stays readable
// (files and listings) beneath; any other path is refused with EACCES, whichever fd
// it is reached through. With `connect_ports` (a remote worker), TCP connect to those
// ports stays allowed where the kernel handles TCP rights (ABI 4+); bind, and connect
// to any other port, are denied there as for every worker.
[[nodiscard]] Result<LandlockOutcome> restrict_to_reading_beneath(
    std::span<const int> readable_dirs, std::optional<std::span<const std::uint16_t>> connect_ports = {});

}  // namespace cfs::worker
