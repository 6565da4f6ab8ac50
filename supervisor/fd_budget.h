// How many objects the supervisor can hold. It keeps one anon fd per open object
// (object_registry.h), and a worker decides how many it registers: a compromised one
// could send the same anon fd under thousands of ids until the supervisor had no fd
// left to accept a client or start a worker. So the registry has a bound taken from
// RLIMIT_NOFILE, raised first to its hard limit (systemd's default hard limit is
// 524288; the supervisor never uses select(), so fd numbers above 1024 are fine).
#pragma once

#include <cstddef>

namespace cfs::supervisor {

// Fds kept free for everything but objects: workers (socket, pidfd), control
// clients, the device, the journal, files opened at start-up.
inline constexpr std::size_t kFdsReservedForOtherUses = 256;

// Raises the soft RLIMIT_NOFILE to the hard one (best effort) and returns how many
// objects fit under it (at least 1).
[[nodiscard]] std::size_t object_budget();

// The arithmetic, for tests.
[[nodiscard]] std::size_t object_budget_for(std::size_t fd_limit);

}  // namespace cfs::supervisor
