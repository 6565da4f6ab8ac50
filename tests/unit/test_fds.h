// Descriptors for unit tests: stand-ins for anon fds, and the checks made on them.
#pragma once

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>

#include <doctest/doctest.h>

namespace cfs::testing {

// A real descriptor standing in for a cachefiles anon fd.
inline int make_memfd() {
    const int fd = ::memfd_create("fake-anon", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    return fd;
}

// Whether two descriptors lead to the same open file's inode (a copy passed over a
// socket is another fd number for the same file).
inline bool same_file(int a, int b) {
    struct stat sa {}, sb {};
    REQUIRE(::fstat(a, &sa) == 0);
    REQUIRE(::fstat(b, &sb) == 0);
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// Raises RLIMIT_NOFILE to `want` if the hard limit allows; false (and a message) if
// the test cannot have that many fds.
inline bool room_for_fds(rlim_t want) {
    rlimit limit{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
    if (limit.rlim_cur < want) {
        rlimit raised{std::min<rlim_t>(want, limit.rlim_max), limit.rlim_max};
        (void)::setrlimit(RLIMIT_NOFILE, &raised);
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
    }
    if (limit.rlim_cur >= want) return true;
    MESSAGE("RLIMIT_NOFILE hard limit " << limit.rlim_max << " leaves no room for the test");
    return false;
}

}  // namespace cfs::testing
