// Culling (supervisor/cache_cull.h): the order and the stop, with the kernel's
// answers faked; the real device is the VM's (tests/vm/scenarios/cache_full.sh).
#include "supervisor/cache_cull.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/unique_fd.h"
#include "supervisor/cull_pass.h"

using namespace cfs;
using namespace cfs::supervisor;

namespace {
// A new directory under /tmp for a cache of its own; the test removes it.
std::string make_temp_dir() {
    char templ[] = "/tmp/cfs-cull-XXXXXX";
    REQUIRE(::mkdtemp(templ) != nullptr);
    return templ;
}
}  // namespace

TEST_CASE("cull: the least recently used first, past those in use or gone, until the target is freed") {
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
    std::string failure;
    // 130 bytes: oldest (10) + second (20) + new (100); newest is left.
    const CullReport report = cull_oldest(files, cull, CullTarget{.bytes = 130, .files = 1}, failure);
    CHECK(asked == std::vector<std::string>{"oldest", "busy", "gone", "second", "new"});
    CHECK(report.culled == 3);
    CHECK(report.freed_bytes == 130);
    CHECK(report.in_use == 1);
    CHECK(report.gone == 1);
    CHECK(report.failed == 0);
    CHECK(failure.empty());

    // Files are a target of their own: 1 byte but 4 files.
    asked.clear();
    const CullReport by_files = cull_oldest(files, cull, CullTarget{.bytes = 1, .files = 4}, failure);
    CHECK(by_files.culled == 4);
    CHECK(asked.back() == "newest");

    // Nothing lacking: nothing culled.
    asked.clear();
    CHECK(cull_oldest(files, cull, CullTarget{}, failure).culled == 0);
    CHECK(asked.empty());
}

TEST_CASE("cull: a file the kernel will not cull is skipped, not the end of culling; a failing device ends the pass") {
    const std::vector<CacheFile> files{{"/c/cache/Iv/@1", "a", 1, 1}, {"/c/cache/Iv/@1", "broken", 2, 1},
                                       {"/c/cache/Iv/@1", "c", 3, 1}};
    std::string failure;
    const CullReport report = cull_oldest(
        files, [](const CacheFile& f) { return f.name == "broken" ? EIO : 0; }, CullTarget{.bytes = 3, .files = 0},
        failure);
    CHECK(report.culled == 2);
    CHECK(report.failed == 1);
    CHECK(failure.find("culling /c/cache/Iv/@1/broken") != std::string::npos);

    std::vector<CacheFile> many;
    for (int i = 0; i < 100; ++i) many.push_back({"/c/cache/Iv/@1", "f" + std::to_string(i), i, 1});
    unsigned calls = 0;
    failure.clear();
    const CullReport dead = cull_oldest(
        many, [&](const CacheFile&) { return ++calls, EIO; }, CullTarget{.bytes = 100, .files = 0}, failure);
    CHECK(calls == kMaxCullFailuresInARow);
    CHECK(dead.failed == kMaxCullFailuresInARow);
    CHECK(failure.find("f0") != std::string::npos);
}

// The kernel's checks of each limit command (fs/cachefiles/daemon.c, Linux 6.12):
// each is judged against the other two limits as they are at that moment.
struct KernelLimits {
    unsigned run, cull, stop;

    // Applies "<b|f><run|cull|stop> N%"; false where the kernel says ERANGE.
    bool apply(const std::string& command) {
        const auto space = command.find(' ');
        const std::string verb = command.substr(1, space - 1);
        const unsigned n = static_cast<unsigned>(std::stoul(command.substr(space + 1)));
        REQUIRE(command.back() == '%');
        if (verb == "run") {
            if (n <= cull || n >= 100) return false;
            run = n;
        } else if (verb == "cull") {
            if (n <= stop || n >= run) return false;
            cull = n;
        } else if (verb == "stop") {
            if (n >= cull) return false;
            stop = n;
        } else {
            FAIL("not a limit command: " << command);
        }
        return true;
    }
};

TEST_CASE("cull: the limit commands are taken by the kernel in order, from any valid limits to any other") {
    const CullLimits defaults{};
    CHECK(cull_limit_commands(defaults) == std::vector<std::string>{"brun 99%", "bstop 0%", "bcull 7%", "brun 10%",
                                                                    "bstop 3%", "frun 99%", "fstop 0%", "fcull 7%",
                                                                    "frun 10%", "fstop 3%"});
    // The kernel's own (a device just opened), cachefilesd's, and the extremes.
    const CullLimits states[] = {{7, 5, 1}, {10, 7, 3}, {99, 98, 97}, {2, 1, 0}, {50, 40, 30}, {99, 1, 0}};
    for (const CullLimits& from : states) {
        for (const CullLimits& to : states) {
            CAPTURE(from.run);
            CAPTURE(from.cull);
            CAPTURE(from.stop);
            CAPTURE(to.run);
            CAPTURE(to.cull);
            CAPTURE(to.stop);
            KernelLimits blocks{from.run, from.cull, from.stop};
            KernelLimits files = blocks;
            for (const std::string& command : cull_limit_commands(to)) {
                CAPTURE(command);
                CHECK((command[0] == 'b' ? blocks : files).apply(command));
            }
            for (const KernelLimits& k : {blocks, files}) {
                CHECK(k.run == to.run);
                CHECK(k.cull == to.cull);
                CHECK(k.stop == to.stop);
            }
        }
    }
}

TEST_CASE("cull: the limits culling goes by fit the refusal limit the cache was bound with") {
    const CullLimits configured{.run = 10, .cull = 7, .stop = 3};
    CHECK(effective_cull_limits(configured, std::nullopt) == configured);
    CHECK(effective_cull_limits(configured, 3U) == configured);
    CHECK(effective_cull_limits(configured, 1U) == CullLimits{.run = 10, .cull = 7, .stop = 1});
    // Bound with 8 by an earlier start: culling below 7% would come too late.
    CHECK(effective_cull_limits(configured, 8U) == CullLimits{.run = 10, .cull = 9, .stop = 8});
    CHECK(effective_cull_limits(configured, 9U) == CullLimits{.run = 11, .cull = 10, .stop = 9});
    // A record out of the kernel's range still leaves valid limits.
    CHECK(effective_cull_limits(configured, 99U) == CullLimits{.run = 99, .cull = 98, .stop = 97});
}

TEST_CASE("cull pass: runs in a child that culls through the device, oldest first, and reports; our working "
          "directory stays") {
    const std::string cache = make_temp_dir();
    const std::string dir = cache + "/cache/Ierofs,img/@4a";
    REQUIRE(std::filesystem::create_directories(dir));
    // Access times 100, 200 and 300 s after the epoch: "mid" is written first, so
    // the order is not the directory's.
    for (const auto& [name, atime] : {std::pair{"mid", 200}, std::pair{"old", 100}, std::pair{"new", 300}}) {
        const std::string path = dir + "/" + name;
        std::ofstream(path) << std::string(8192, 'x');
        const timespec times[2] = {{atime, 0}, {atime, 0}};
        REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
    }
    int device[2];
    REQUIRE(::pipe2(device, O_CLOEXEC | O_NONBLOCK) == 0);
    cfs::unique_fd commands(device[0]), device_end(device[1]);
    char before[4096];
    REQUIRE(::getcwd(before, sizeof before) != nullptr);

    // 100%: this filesystem always lacks some, so every file is culled.
    auto pass = CullPass::start(device_end.get(), cache, 100);
    REQUIRE_MESSAGE(pass, pass.error().message());
    pollfd done{pass->pidfd(), POLLIN, 0};
    REQUIRE(::poll(&done, 1, 10'000) == 1);
    auto outcome = pass->finish();
    REQUIRE_MESSAGE(outcome, outcome.error().message());
    CHECK(outcome->report.culled == 3);
    CHECK(outcome->report.freed_bytes >= 3 * 8192);
    CHECK(outcome->still_short);
    CHECK(outcome->failure.empty());

    std::string written(256, '\0');
    const ssize_t n = ::read(commands.get(), written.data(), written.size());
    REQUIRE(n > 0);
    written.resize(static_cast<std::size_t>(n));
    CHECK(written == "cull oldcull midcull new");
    char after[4096];
    REQUIRE(::getcwd(after, sizeof after) != nullptr);
    CHECK(std::string(after) == before);
    std::filesystem::remove_all(cache);
}

// More cache files than a pass looks at: the oldest of all of them are looked at,
// wherever the walk finds them (it once kept the first it found, the same ones
// each pass, so a cache past the cap culled from one corner only).
TEST_CASE("cull pass: past its cap a pass looks at the oldest files of the whole cache") {
    const std::string cache = make_temp_dir();
    std::map<std::string, int> atimes;  // path -> seconds
    int n = 0;
    for (const char* dir : {"/cache/Ierofs,a/@01", "/cache/Ierofs,b/@02", "/cache/Ierofs,c/@03"}) {
        REQUIRE(std::filesystem::create_directories(cache + dir));
        // Old and new files in every directory: 100, 800, 600 s; 400, 200, 900 s; ...
        for (int i = 0; i < 3; ++i, ++n) {
            const std::string path = cache + dir + "/f" + std::to_string(i);
            std::ofstream(path) << "x";
            const int atime = 100 + (n * 7 % 9) * 100;
            const timespec times[2] = {{atime, 0}, {atime, 0}};
            REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
            atimes[path] = atime;
        }
    }
    std::vector<int> sorted;
    for (const auto& [path, atime] : atimes) sorted.push_back(atime);
    std::sort(sorted.begin(), sorted.end());

    for (const std::size_t cap : {std::size_t{0}, std::size_t{1}, std::size_t{4}, std::size_t{9}, std::size_t{20}}) {
        CAPTURE(cap);
        auto walk = oldest_cache_files(cache + "/cache", cap);
        REQUIRE_MESSAGE(walk, walk.error().message());
        CHECK(walk->capped == (cap < atimes.size()));
        std::vector<int> got;
        for (const CacheFile& f : walk->files) {
            REQUIRE(atimes.count(f.dir + "/" + f.name) == 1);
            CHECK(f.atime_ns == std::int64_t{atimes[f.dir + "/" + f.name]} * 1'000'000'000);
            got.push_back(atimes[f.dir + "/" + f.name]);
        }
        std::sort(got.begin(), got.end());
        const std::vector<int> oldest(sorted.begin(), sorted.begin() + static_cast<long>(std::min(cap, sorted.size())));
        CHECK(got == oldest);
    }
    std::filesystem::remove_all(cache);
}

// The pid behind a pidfd (its fdinfo says).
pid_t pid_of(int pidfd) {
    std::ifstream info("/proc/self/fdinfo/" + std::to_string(pidfd));
    std::string line;
    while (std::getline(info, line))
        if (line.rfind("Pid:", 0) == 0) return static_cast<pid_t>(std::stol(line.substr(4)));
    return -1;
}

// Whether process `pid` has `path` open.
bool holds_open(pid_t pid, const std::string& path) {
    std::error_code ec;
    for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
        std::error_code link_ec;
        const auto target = std::filesystem::read_symlink(fd.path(), link_ec);
        if (!link_ec && target == path) return true;
    }
    return false;
}

TEST_CASE("cull pass: a file is held open while the kernel culls it, so its blocks are freed outside the "
          "kernel's command mutex") {
    const std::string cache = make_temp_dir();
    const std::string dir = cache + "/cache/Ierofs,img/@4a";
    REQUIRE(std::filesystem::create_directories(dir));
    std::ofstream(dir + "/only") << std::string(8192, 'x');
    // A full pipe as the device: the child's "cull only" blocks until we read, and
    // meanwhile we look at what it has open.
    int device[2];
    REQUIRE(::pipe2(device, O_CLOEXEC) == 0);
    cfs::unique_fd commands(device[0]), device_end(device[1]);
    REQUIRE(::fcntl(device_end.get(), F_SETFL, O_NONBLOCK) == 0);
    const std::string filler(4096, 'f');
    std::size_t filled = 0;
    while (::write(device_end.get(), filler.data(), filler.size()) > 0) filled += filler.size();
    REQUIRE(::fcntl(device_end.get(), F_SETFL, 0) == 0);

    auto pass = CullPass::start(device_end.get(), cache, 100);
    REQUIRE_MESSAGE(pass, pass.error().message());
    const pid_t child = pid_of(pass->pidfd());
    REQUIRE(child > 0);
    bool held = false;
    for (int i = 0; i < 500 && !held; ++i) {
        held = holds_open(child, dir + "/only");
        if (!held) ::usleep(10'000);
    }
    CHECK(held);

    std::string drained(filled + 256, '\0');
    std::size_t got = 0;
    pollfd done{pass->pidfd(), POLLIN, 0};
    while (::poll(&done, 1, 0) == 0 || got < filled) {
        const ssize_t n = ::read(commands.get(), drained.data() + got, drained.size() - got);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
        if (got > filled && drained.find("cull only", filled) != std::string::npos) break;
    }
    REQUIRE(::poll(&done, 1, 10'000) == 1);
    auto outcome = pass->finish();
    REQUIRE_MESSAGE(outcome, outcome.error().message());
    CHECK(outcome->report.culled == 1);
    std::filesystem::remove_all(cache);
}

TEST_CASE("cull pass: a cache directory that cannot be walked is reported, not a crash") {
    int device[2];
    REQUIRE(::pipe2(device, O_CLOEXEC) == 0);
    cfs::unique_fd commands(device[0]), device_end(device[1]);
    auto pass = CullPass::start(device_end.get(), "/nonexistent/cfs-cache", 100);
    REQUIRE(pass);
    pollfd done{pass->pidfd(), POLLIN, 0};
    REQUIRE(::poll(&done, 1, 10'000) == 1);
    auto outcome = pass->finish();
    REQUIRE_FALSE(outcome);
    CHECK(outcome.error().message().find("/nonexistent/cfs-cache") != std::string::npos);
}
