// The worker's syscalls against the cachefiles device and its anon fds, behind an
// interface so the request logic can be tested with a fake. The real implementation
// is exercised only on a real kernel (tests/vm).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cfs::worker {

class KernelIo {
public:
    virtual ~KernelIo() = default;
    // One whole message from the device into `buffer`; 0 when nothing is pending.
    [[nodiscard]] virtual Result<std::size_t> read_request(std::span<std::byte> buffer) = 0;
    // A text command such as "copen 5,4096".
    [[nodiscard]] virtual Status write_command(std::string_view command) = 0;
    // Writes all of `data` (4096-aligned buffer, offset and length) into the cache file.
    [[nodiscard]] virtual Status write_cache(int anon_fd, std::span<const std::byte> data,
                                             std::uint64_t offset) = 0;
    // lseek(SEEK_DATA or SEEK_HOLE) on an anon fd: what the object's cache file holds,
    // whoever wrote it. No data at or after `pos`: UINT64_MAX for data, `pos` for a hole.
    enum class Seek { data, hole };
    [[nodiscard]] virtual Result<std::uint64_t> seek(int anon_fd, std::uint64_t pos, Seek what) = 0;
    // CACHEFILES_IOC_READ_COMPLETE for `msg_id`.
    [[nodiscard]] virtual Status complete_read(int anon_fd, std::uint32_t msg_id) = 0;
    // Whether `fd` really is a cachefiles anon fd (guards against closing, or writing
    // to, an unrelated descriptor named by a malformed message).
    [[nodiscard]] virtual bool is_cache_anon_fd(int fd) = 0;
    // Does nothing for `how_long`: between tries of a write the kernel refused for
    // want of room (RequestHandler, kCacheRoomWait), timed by now().
    virtual void wait(std::chrono::milliseconds how_long) = 0;
    [[nodiscard]] virtual std::chrono::steady_clock::time_point now() = 0;
};

class DeviceKernelIo final : public KernelIo {
public:
    explicit DeviceKernelIo(unique_fd device) : device_(std::move(device)) {}
    [[nodiscard]] int device_fd() const { return device_.get(); }

    Result<std::size_t> read_request(std::span<std::byte> buffer) override;
    Status write_command(std::string_view command) override;
    Status write_cache(int anon_fd, std::span<const std::byte> data, std::uint64_t offset) override;
    Result<std::uint64_t> seek(int anon_fd, std::uint64_t pos, Seek what) override;
    Status complete_read(int anon_fd, std::uint32_t msg_id) override;
    bool is_cache_anon_fd(int fd) override;
    void wait(std::chrono::milliseconds how_long) override;
    std::chrono::steady_clock::time_point now() override { return std::chrono::steady_clock::now(); }

private:
    unique_fd device_;
};

}  // namespace cfs::worker
