// getpwnam_r and getgrnam_r take the caller's buffer and say ERANGE when the entry
// does not fit (a group with many members, from a directory service): the lookup is
// retried with twice the room, up to a limit.
#pragma once

#include <cerrno>
#include <cstddef>
#include <vector>

namespace cfs::supervisor {

// `lookup(char* buffer, std::size_t size)` returns what the *_r call returns.
template <class Lookup>
[[nodiscard]] int lookup_growing_buffer(std::vector<char>& buffer, std::size_t max_bytes, Lookup lookup) {
    int rc;
    while ((rc = lookup(buffer.data(), buffer.size())) == ERANGE && buffer.size() < max_bytes)
        buffer.resize(buffer.size() * 2);
    return rc;
}

}  // namespace cfs::supervisor
