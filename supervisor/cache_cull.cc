#include "supervisor/cache_cull.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace cfs::supervisor {
namespace {

// "cull <name>" resolves the name in the writer's working directory. The kernel
// runs every device command under one mutex, and a cull unlinks the file inside
// it: a file's last unlink also frees its blocks, which took 100 ms for a 47 MiB
// cache file in the test VM, and a failover's `restore` (and every worker's
// `copen`) waited that long behind it. Held open across the command, the file
// loses only its name there; its blocks are freed when this fd closes, outside
// the mutex. (The kernel marks files in use with a flag, not by their open count,
// so this does not make it refuse the cull.)
int cull_through(int device, const CacheFile& file) {
    if (::chdir(file.dir.c_str()) < 0) return errno;
    const unique_fd held(::open(file.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    const std::string command = "cull " + file.name;
    ssize_t n;
    do {
        n = ::write(device, command.data(), command.size());
    } while (n < 0 && errno == EINTR);
    return n < 0 ? errno : 0;
}

// The counts of the filesystem `path` is on, which room_needed and free_room read.
Result<struct statvfs> filesystem_of(const std::string& path) {
    struct statvfs s {};
    if (::statvfs(path.c_str(), &s) < 0) return sys_error(fmt::format("looking at the free space of {}", path));
    return s;
}

}  // namespace

Result<CacheWalk> oldest_cache_files(const std::string& root, std::size_t max_files) {
    namespace fs = std::filesystem;
    CacheWalk walk;
    // A heap with the most recently accessed on top: once full, a file older than
    // that one takes its place, so what is left are the oldest of all, whatever the
    // order the walk finds them in.
    const auto newer_on_top = [](const CacheFile& a, const CacheFile& b) { return a.atime_ns < b.atime_ns; };
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    if (ec) return sys_error(ec.value(), fmt::format("listing the cache {}", root));
    for (const fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
        if (ec) return sys_error(ec.value(), fmt::format("listing the cache {}", root));
        struct stat st {};
        if (::lstat(it->path().c_str(), &st) < 0 || !S_ISREG(st.st_mode)) continue;
        const std::int64_t atime_ns = static_cast<std::int64_t>(st.st_atim.tv_sec) * 1'000'000'000 + st.st_atim.tv_nsec;
        if (walk.files.size() == max_files) {
            walk.capped = true;
            if (max_files == 0 || atime_ns >= walk.files.front().atime_ns) continue;
            std::pop_heap(walk.files.begin(), walk.files.end(), newer_on_top);
            walk.files.pop_back();
        }
        walk.files.push_back(CacheFile{it->path().parent_path().string(), it->path().filename().string(), atime_ns,
                                       static_cast<std::uint64_t>(st.st_blocks) * 512});
        std::push_heap(walk.files.begin(), walk.files.end(), newer_on_top);
    }
    if (ec) return sys_error(ec.value(), fmt::format("listing the cache {}", root));
    return walk;
}

std::vector<std::string> cull_limit_commands(const CullLimits& limits) {
    // Whatever the old limits: run 99 is above any old cull, stop 0 below it; then
    // cull fits between those two, and run and stop are set around it.
    std::vector<std::string> out;
    for (const char* kind : {"b", "f"}) {
        out.push_back(fmt::format("{}run 99%", kind));
        out.push_back(fmt::format("{}stop 0%", kind));
        out.push_back(fmt::format("{}cull {}%", kind, limits.cull));
        out.push_back(fmt::format("{}run {}%", kind, limits.run));
        out.push_back(fmt::format("{}stop {}%", kind, limits.stop));
    }
    return out;
}

std::string refusal_limit_text(std::optional<unsigned> refuse_below_percent) {
    return refuse_below_percent ? fmt::format("{}%", *refuse_below_percent) : std::string("the limit it was bound with");
}

CullLimits effective_cull_limits(const CullLimits& configured, std::optional<unsigned> bound_stop) {
    CullLimits limits = configured;
    if (!bound_stop) return limits;
    // Within what the kernel takes: stop < cull < run <= 99.
    limits.stop = std::min(*bound_stop, 97U);
    limits.cull = std::max(limits.cull, limits.stop + 1);
    limits.run = std::max(limits.run, limits.cull + 1);
    return limits;
}

CullReport cull_oldest(std::vector<CacheFile> files, const std::function<int(const CacheFile&)>& cull,
                       CullTarget target, std::string& first_failure) {
    std::sort(files.begin(), files.end(),
              [](const CacheFile& a, const CacheFile& b) { return a.atime_ns < b.atime_ns; });
    CullReport report;
    unsigned failures_in_a_row = 0;
    for (const CacheFile& f : files) {
        if (report.freed_bytes >= target.bytes && report.culled >= target.files) break;
        const int err = cull(f);
        if (err == 0) {
            ++report.culled;
            report.freed_bytes += f.bytes;
        } else if (err == EBUSY) {
            ++report.in_use;
        } else if (err == ESTALE || err == ENOENT) {
            ++report.gone;
        } else {
            if (report.failed++ == 0)
                first_failure = sys_error(err, fmt::format("culling {}/{}", f.dir, f.name)).message();
            if (++failures_in_a_row >= kMaxCullFailuresInARow) break;
            continue;
        }
        failures_in_a_row = 0;
    }
    return report;
}

Result<CullTarget> room_needed(const std::string& path, unsigned percent) {
    auto fs = filesystem_of(path);
    if (!fs) return std::move(fs).error();
    const struct statvfs& s = *fs;
    // ceil(total * percent / 100) - free, never below 0.
    const auto lacking = [percent](unsigned __int128 total, unsigned __int128 free) -> std::uint64_t {
        const unsigned __int128 wanted = (total * percent + 99) / 100;
        return wanted > free ? static_cast<std::uint64_t>(wanted - free) : 0;
    };
    CullTarget t;
    t.bytes = lacking(s.f_blocks, s.f_bavail) * std::max<std::uint64_t>(s.f_frsize, 1);
    t.files = s.f_files == 0 ? 0 : lacking(s.f_files, s.f_ffree);
    return t;
}

Result<FreeRoom> free_room(const std::string& path) {
    auto fs = filesystem_of(path);
    if (!fs) return std::move(fs).error();
    const struct statvfs& s = *fs;
    FreeRoom room;
    if (s.f_blocks > 0) room.blocks = 100.0 * static_cast<double>(s.f_bavail) / static_cast<double>(s.f_blocks);
    if (s.f_files > 0) room.files = 100.0 * static_cast<double>(s.f_ffree) / static_cast<double>(s.f_files);
    return room;
}

Result<bool> free_at_least(const std::string& path, unsigned percent) {
    auto needed = room_needed(path, percent);
    if (!needed) return std::move(needed).error();
    return needed->reached();
}

Result<CullOutcome> cull_to_run_limit(int device, const std::string& cache_dir, unsigned run_percent) {
    auto target = room_needed(cache_dir, run_percent);
    if (!target) return std::move(target).error();
    CullOutcome outcome;
    if (target->reached()) return outcome;
    auto walk = oldest_cache_files(cache_dir + "/cache", kMaxFilesPerPass);
    if (!walk) return std::move(walk).error();
    outcome.report = cull_oldest(
        std::move(walk->files), [device](const CacheFile& f) { return cull_through(device, f); }, *target,
        outcome.failure);
    outcome.report.walk_capped = walk->capped;
    (void)!::chdir("/");
    // By the count, not statvfs: blocks some filesystems free later are not short.
    outcome.still_short = outcome.report.freed_bytes < target->bytes || outcome.report.culled < target->files;
    return outcome;
}

}  // namespace cfs::supervisor
