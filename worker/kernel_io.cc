#include "worker/kernel_io.h"

#include <linux/cachefiles.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

namespace cfs::worker {

Result<std::size_t> DeviceKernelIo::read_request(std::span<std::byte> buffer) {
    for (;;) {
        ssize_t n = ::read(device_.get(), buffer.data(), buffer.size());
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno != EINTR) return sys_error("reading a request from /dev/cachefiles");
    }
}

Status DeviceKernelIo::write_command(std::string_view command) {
    for (;;) {
        ssize_t n = ::write(device_.get(), command.data(), command.size());
        if (n >= 0) return {};
        if (errno != EINTR) return sys_error(fmt::format("writing '{}' to /dev/cachefiles", command));
    }
}

Result<std::uint64_t> DeviceKernelIo::seek(int anon_fd, std::uint64_t pos, Seek what) {
    const off_t at = ::lseek(anon_fd, static_cast<off_t>(pos), what == Seek::data ? SEEK_DATA : SEEK_HOLE);
    if (at >= 0) return static_cast<std::uint64_t>(at);
    // ENXIO: `pos` is at or past the end of the file, where there is no data and
    // (as far as a writer cares) only a hole.
    if (errno == ENXIO) return what == Seek::data ? UINT64_MAX : pos;
    return sys_error(fmt::format("looking for {} at offset {} in a cache file", what == Seek::data ? "data" : "a hole", pos));
}

Status DeviceKernelIo::write_cache(int anon_fd, std::span<const std::byte> data, std::uint64_t offset) {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pwrite(anon_fd, data.data() + done, data.size() - done,
                             static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            // ENOBUFS: cachefiles refuses writes once the cache's filesystem has less
            // free space (or files) than its stop limit; the supervisor culls what no
            // image uses (supervisor/cache_cull.h), and says when nothing is left.
            return sys_error(fmt::format("writing {} bytes at offset {} into the cache file{}", data.size() - done,
                                         offset + done,
                                         errno == ENOBUFS ? " (the cache is full: its filesystem is below the "
                                                            "free-space limit cachefiles keeps; the supervisor's "
                                                            "log says what it could cull)"
                                                          : ""));
        }
        if (n == 0) return sys_error(EIO, fmt::format("cache file accepted no bytes at offset {}", offset + done));
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Status DeviceKernelIo::complete_read(int anon_fd, std::uint32_t msg_id) {
    if (::ioctl(anon_fd, CACHEFILES_IOC_READ_COMPLETE, static_cast<unsigned long>(msg_id)) < 0)
        return sys_error(fmt::format("completing READ msg_id {}", msg_id));
    return {};
}

void DeviceKernelIo::wait(std::chrono::milliseconds how_long) {
    // poll() with no fds: the sandbox's policy has it, and no sleep call.
    (void)::poll(nullptr, 0, static_cast<int>(how_long.count()));
}

bool DeviceKernelIo::is_cache_anon_fd(int fd) {
    struct statfs s {};
    if (fd < 0 || fd == device_.get() || ::fstatfs(fd, &s) < 0) return false;
    return s.f_type == ANON_INODE_FS_MAGIC;
}

}  // namespace cfs::worker
