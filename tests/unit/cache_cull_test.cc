// Culling (supervisor/cache_cull.h): the order and the stop, with the kernel's
// answers faked; the real device is the VM's (tests/vm/scenarios/cache_full.sh).
#include "supervisor/cache_cull.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <vector>

using namespace cfs;
using namespace cfs::supervisor;

TEST_CASE("cull: the least recently used first, past those in use or gone, until there is room") {
    const std::vector<CacheFile> files{
        {"/c/cache/Iv/@1", "new", 300, 100}, {"/c/cache/Iv/@2", "oldest", 100, 10},
        {"/c/cache/Iv/@1", "busy", 150, 1000}, {"/c/cache/Iv/@3", "gone", 170, 1000},
        {"/c/cache/Iv/@2", "second", 200, 20}, {"/c/cache/Iv/@9", "newest", 900, 5}};
    std::vector<std::string> asked;
    auto cull = [&](const CacheFile& f) {
        asked.push_back(f.name);
        if (f.name == "busy") return EBUSY;
        if (f.name == "gone") return ESTALE;
        return 0;
    };
    unsigned culled = 0;
    auto report = cull_oldest(files, [&](const CacheFile& f) {
        const int r = cull(f);
        culled += r == 0;
        return r;
    }, [&] { return culled == 3; });
    REQUIRE(report);
    CHECK(asked == std::vector<std::string>{"oldest", "busy", "gone", "second", "new"});
    CHECK(report->culled == 3);
    CHECK(report->freed_bytes == 130);
    CHECK(report->in_use == 1);
    CHECK(report->gone == 1);
}

TEST_CASE("cull: an error other than in use or gone ends the pass, naming the file") {
    const std::vector<CacheFile> files{{"/c/cache/Iv/@1", "a", 1, 1}, {"/c/cache/Iv/@1", "b", 2, 1}};
    unsigned calls = 0;
    auto report = cull_oldest(files, [&](const CacheFile&) { return ++calls == 1 ? 0 : EIO; }, [] { return false; });
    REQUIRE_FALSE(report);
    CHECK(report.error().errnum == EIO);
    CHECK(report.error().message().find("/c/cache/Iv/@1/b after 1 culled") != std::string::npos);
}

TEST_CASE("cull: the limits are set from the top down, blocks then files") {
    CHECK(cull_limit_commands() ==
          std::vector<std::string>{"brun 10%", "bcull 7%", "bstop 3%", "frun 10%", "fcull 7%", "fstop 3%"});
}
