#include "supervisor/cache_device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "supervisor/cache_cull.h"

namespace cfs::supervisor {
namespace {

Error open_failure(int err) {
    switch (err) {
        case ENOENT:
        case ENODEV:
        case ENXIO:
            return Error{err, fmt::format("cannot open {}: the cachefiles module is not loaded or the "
                                          "kernel lacks CONFIG_CACHEFILES (try: modprobe cachefiles)",
                                          kDevicePath)};
        case EBUSY:
            return Error{err, fmt::format("cannot open {}: the cache is already bound by another daemon "
                                          "(another cfsupervisor, or cachefilesd); only one may hold it",
                                          kDevicePath)};
        case EACCES:
        case EPERM:
            return Error{err, fmt::format("cannot open {}: it needs CAP_SYS_ADMIN (run as root, or "
                                          "check the unit's CapabilityBoundingSet and DeviceAllow)",
                                          kDevicePath)};
        default:
            return Error{err, fmt::format("cannot open {}", kDevicePath)};
    }
}

Status write_command(int device, const std::string& command, const std::string& cache_dir) {
    ssize_t n;
    do {
        n = ::write(device, command.data(), command.size());
    } while (n < 0 && errno == EINTR);
    if (n >= 0) return {};
    const int err = errno;
    const bool is_bind = command.starts_with("bind");
    if (is_bind && err == EINVAL)
        return Error{err, "the kernel does not support on-demand mode: it needs "
                          "CONFIG_CACHEFILES_ONDEMAND (Linux 5.19 or later)"};
    if (is_bind && err == EOPNOTSUPP)
        return Error{err, fmt::format("the filesystem of cache directory {} cannot hold a cache: it needs "
                                      "xattrs and a block size no larger than a page (use ext4 or xfs; "
                                      "tmpfs does not work)",
                                      cache_dir)};
    if (is_bind && err == EROFS)
        return Error{err, fmt::format("cache directory {} is on a read-only filesystem", cache_dir)};
    if (is_bind && err == EBUSY) return Error{err, "the cache is already bound"};
    return Error{err, fmt::format("the kernel refused '{}' on {}", command, kDevicePath)};
}

Status ensure_directory(const std::string& path) {
    if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) {
        struct stat st {};
        if (::stat(path.c_str(), &st) < 0) return sys_error(fmt::format("cache directory {}", path));
        if (!S_ISDIR(st.st_mode)) return sys_error(ENOTDIR, fmt::format("cache directory {}", path));
        return {};
    }
    return sys_error(fmt::format("creating cache directory {}", path));
}

}  // namespace

Result<unique_fd> bind_cache(const std::string& cache_dir, std::string_view tag, const CullLimits& limits) {
    if (auto dir = ensure_directory(cache_dir); !dir) return std::move(dir).error();
    unique_fd device(::open(kDevicePath, O_RDWR | O_CLOEXEC));
    if (!device) return open_failure(errno);
    std::vector<std::string> commands{"dir " + cache_dir, "tag " + std::string(tag)};
    // The free-space limits the supervisor culls by (cache_cull.h), so that the
    // kernel's and ours agree.
    for (std::string& limit : cull_limit_commands(limits)) commands.push_back(std::move(limit));
    commands.emplace_back("bind ondemand");
    for (const std::string& command : commands) {
        if (auto written = write_command(device.get(), command, cache_dir); !written)
            return std::move(written).error();
    }
    return device;
}

Status restore_requests(int device) {
    ssize_t n;
    do {
        n = ::write(device, "restore", 7);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return sys_error("writing 'restore' to /dev/cachefiles");
    return {};
}

}  // namespace cfs::supervisor
