#include "worker/local_backend.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <fmt/format.h>

#include "common/blob_name.h"

namespace cfs::worker {
namespace {

class LocalBlob final : public BlobSource {
public:
    LocalBlob(unique_fd fd, std::uint64_t size) : fd_(std::move(fd)), size_(size) {}
    std::uint64_t size() const override { return size_; }

    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override {
        std::size_t done = 0;
        while (done < buffer.size()) {
            ssize_t n = ::pread(fd_.get(), buffer.data() + done, buffer.size() - done,
                                static_cast<off_t>(offset + done));
            if (n < 0) {
                if (errno == EINTR) continue;
                return sys_error(fmt::format("reading {} bytes at offset {}", buffer.size() - done,
                                             offset + done));
            }
            if (n == 0) break;  // end of the blob
            done += static_cast<std::size_t>(n);
        }
        return done;
    }

    void will_need(std::uint64_t offset, std::uint64_t length) override {
        // Starts the reads and returns; a failure only costs the overlap.
        (void)::posix_fadvise(fd_.get(), static_cast<off_t>(offset), static_cast<off_t>(length), POSIX_FADV_WILLNEED);
    }

private:
    unique_fd fd_;
    std::uint64_t size_;
};

}  // namespace

Result<std::unique_ptr<BlobSource>> LocalDirBackend::open(std::string_view name) {
    if (auto valid = validate_blob_name(name); !valid) return std::move(valid).error();
    const std::string path(name);
    open_how how{};
    // O_NONBLOCK: a FIFO or device in the blob directory must fail the S_ISREG check
    // below, not block the worker in open() (it changes nothing for regular files).
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, dir_.get(), path.c_str(), &how, sizeof how);
    if (fd < 0 && errno == ENOSYS) {
        // systemd's RestrictSUIDSGID= (and other seccomp filters that cannot inspect
        // open_how) fail openat2 with ENOSYS. The name is one validated component, so
        // openat with O_NOFOLLOW stays beneath the directory just the same.
        fd = ::openat(dir_.get(), path.c_str(), static_cast<int>(how.flags) | O_NOFOLLOW);
    }
    if (fd < 0) return sys_error("opening the blob");
    unique_fd blob(static_cast<int>(fd));
    struct stat st {};
    if (::fstat(blob.get(), &st) < 0) return sys_error("inspecting the blob");
    if (!S_ISREG(st.st_mode)) return sys_error(EINVAL, "the blob is not a regular file");
    return std::unique_ptr<BlobSource>(
        std::make_unique<LocalBlob>(std::move(blob), static_cast<std::uint64_t>(st.st_size)));
}

}  // namespace cfs::worker
