#include "supervisor/cache_cull.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <system_error>

#include <fmt/format.h>

namespace cfs::supervisor {
namespace {

// A cache holds one file per object; past this many, the oldest of those seen are
// culled first and the next pass sees the rest.
constexpr std::size_t kMaxFilesPerPass = 200'000;

// Every cache file under `root`, not following symlinks (the cache is root's, but a
// link in it must not lead the walk elsewhere).
Result<std::vector<CacheFile>> cache_files(const std::string& root) {
    namespace fs = std::filesystem;
    std::vector<CacheFile> files;
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    if (ec) return sys_error(ec.value(), fmt::format("listing the cache {}", root));
    for (const fs::recursive_directory_iterator end; it != end && files.size() < kMaxFilesPerPass; it.increment(ec)) {
        if (ec) return sys_error(ec.value(), fmt::format("listing the cache {}", root));
        struct stat st {};
        if (::lstat(it->path().c_str(), &st) < 0 || !S_ISREG(st.st_mode)) continue;
        files.push_back(CacheFile{it->path().parent_path().string(), it->path().filename().string(),
                                  static_cast<std::int64_t>(st.st_atim.tv_sec) * 1'000'000'000 + st.st_atim.tv_nsec,
                                  static_cast<std::uint64_t>(st.st_blocks) * 512});
    }
    if (ec) return sys_error(ec.value(), fmt::format("listing the cache {}", root));
    return files;
}

// "cull <name>" resolves the name in the writer's working directory.
int cull_through(int device, const CacheFile& file) {
    if (::chdir(file.dir.c_str()) < 0) return errno;
    const std::string command = "cull " + file.name;
    ssize_t n;
    do {
        n = ::write(device, command.data(), command.size());
    } while (n < 0 && errno == EINTR);
    return n < 0 ? errno : 0;
}

}  // namespace

std::vector<std::string> cull_limit_commands() {
    // Each "run" limit must stay above its "cull", and "cull" above "stop", at every
    // step, or the kernel refuses the command: from the top down.
    std::vector<std::string> out;
    for (const char* kind : {"b", "f"}) {
        out.push_back(fmt::format("{}run {}%", kind, kCullLimits.run));
        out.push_back(fmt::format("{}cull {}%", kind, kCullLimits.cull));
        out.push_back(fmt::format("{}stop {}%", kind, kCullLimits.stop));
    }
    return out;
}

Result<CullReport> cull_oldest(std::vector<CacheFile> files, const std::function<int(const CacheFile&)>& cull,
                               const std::function<bool()>& enough) {
    std::sort(files.begin(), files.end(),
              [](const CacheFile& a, const CacheFile& b) { return a.atime_ns < b.atime_ns; });
    CullReport report;
    for (const CacheFile& f : files) {
        if (enough()) break;
        const int err = cull(f);
        if (err == 0) {
            ++report.culled;
            report.freed_bytes += f.bytes;
        } else if (err == EBUSY) {
            ++report.in_use;
        } else if (err == ESTALE || err == ENOENT) {
            ++report.gone;
        } else {
            return sys_error(err, fmt::format("culling {}/{} after {} culled", f.dir, f.name, report.culled));
        }
    }
    return report;
}

Result<bool> free_at_least(const std::string& path, unsigned percent) {
    struct statvfs s {};
    if (::statvfs(path.c_str(), &s) < 0) return sys_error(fmt::format("looking at the free space of {}", path));
    // As cachefiles counts: blocks available to unprivileged users, free inodes.
    const bool blocks = static_cast<unsigned __int128>(s.f_bavail) * 100 >=
                        static_cast<unsigned __int128>(s.f_blocks) * percent;
    const bool inodes = s.f_files == 0 || static_cast<unsigned __int128>(s.f_ffree) * 100 >=
                                              static_cast<unsigned __int128>(s.f_files) * percent;
    return blocks && inodes;
}

Result<CullReport> cull_if_needed(int device, const std::string& cache_dir, bool& was_needed) {
    was_needed = false;
    auto room = free_at_least(cache_dir, kCullLimits.cull);
    if (!room) return std::move(room).error();
    if (*room) return CullReport{};
    was_needed = true;
    auto files = cache_files(cache_dir + "/cache");
    if (!files) return std::move(files).error();
    std::optional<Error> space_error;
    auto report = cull_oldest(
        std::move(*files), [device](const CacheFile& f) { return cull_through(device, f); },
        [&] {
            auto enough = free_at_least(cache_dir, kCullLimits.run);
            if (!enough) space_error = enough.error();
            return !enough || *enough;
        });
    (void)!::chdir("/");
    if (space_error) return std::move(*space_error);
    return report;
}

}  // namespace cfs::supervisor
