#include "worker/local_backend.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "common/blob_name.h"
#include "worker/aligned_bytes.h"

namespace cfs::worker {
namespace {

// Direct I/O wants offsets, lengths and buffers aligned; 4096 serves every
// filesystem whose own alignment (statx STATX_DIOALIGN) divides it.
constexpr std::size_t kDirectAlign = 4096;

// The most a read through the bounce buffer carries: a caller's unaligned buffer of
// a chunk (a chunk manifest's, a digest check's) costs a system call per MiB, not
// one per block.
constexpr std::size_t kMaxBounce = std::size_t{1} << 20;

}  // namespace

// Allocated at its first use, at the size that use wants (whole blocks, at most
// kMaxBounce), and grown when a later one wants more.
class DirectBounce {
public:
    [[nodiscard]] Result<std::span<std::byte>> at_least(std::size_t bytes) {
        if (bytes > size_) {
            buffer_ = allocate_aligned(kDirectAlign, bytes);
            size_ = buffer_ ? bytes : 0;
            if (!buffer_) return sys_error(ENOMEM, "allocating a buffer for direct reads");
        }
        return std::span(buffer_.get(), bytes);
    }

private:
    AlignedBytes buffer_;
    std::size_t size_ = 0;
};

namespace {

// A blob is read once, into a cache file the kernel then reads from; its pages in
// the page cache would only be a second copy. So a blob is read with direct I/O
// where its filesystem takes it: in the VM this made the copy into a cache file 4.3
// times as fast as through the page cache (bench/, copy_direct against
// copy_willneed, both in 4 MiB pieces). The kernel's read-ahead of the blob is not
// missed: the worker's own writes ahead (worker/read_ahead.h).
class LocalBlob final : public BlobSource {
public:
    // `opened`: the file's fstat at open. `bounce`: for direct reads (null when not
    // `direct`).
    LocalBlob(unique_fd fd, const struct stat& opened, std::shared_ptr<DirectBounce> bounce)
        : fd_(std::move(fd)),
          size_(static_cast<std::uint64_t>(opened.st_size)),
          modified_(opened.st_mtim),
          bounce_(std::move(bounce)) {}
    std::uint64_t size() const override { return size_; }

    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override {
        // Never past the size the object was opened with, whatever the file has now.
        if (offset >= size_) return std::size_t{0};
        buffer = buffer.first(static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size_ - offset)));
        std::size_t done = 0;
        while (done < buffer.size()) {
            auto n = bounce_ ? read_direct(buffer.subspan(done), offset + done)
                             : read_some(buffer.subspan(done), offset + done);
            if (!n) return std::move(n).error();
            if (*n == 0) break;  // end of the blob
            done += *n;
        }
        if (auto same = unchanged(); !same) return std::move(same).error();
        return done;
    }

    void will_need(std::uint64_t offset, std::uint64_t length) override {
        // Direct reads bypass the page cache the advice would fill.
        if (bounce_) return;
        // Starts the reads and returns; a failure only costs the overlap.
        (void)::posix_fadvise(fd_.get(), static_cast<off_t>(offset), static_cast<off_t>(length), POSIX_FADV_WILLNEED);
    }

private:
    Result<std::size_t> read_some(std::span<std::byte> into, std::uint64_t offset) {
        for (;;) {
            const ssize_t n = ::pread(fd_.get(), into.data(), into.size(), static_cast<off_t>(offset));
            if (n >= 0) return static_cast<std::size_t>(n);
            if (errno != EINTR)
                return sys_error(fmt::format("reading {} bytes at offset {}", into.size(), offset));
        }
    }

    // Whole aligned blocks straight into `into` where it allows; what is not aligned
    // (a blob's last bytes, a caller's buffer or offset) through the bounce buffer.
    Result<std::size_t> read_direct(std::span<std::byte> into, std::uint64_t offset) {
        const bool aligned = offset % kDirectAlign == 0 &&
                             reinterpret_cast<std::uintptr_t>(into.data()) % kDirectAlign == 0;
        if (aligned && into.size() >= kDirectAlign)
            return read_some(into.first(into.size() / kDirectAlign * kDirectAlign), offset);
        const std::uint64_t block = offset / kDirectAlign * kDirectAlign;
        const std::size_t skip = static_cast<std::size_t>(offset - block);
        const std::size_t blocks =
            std::min(kMaxBounce, (skip + into.size() + kDirectAlign - 1) / kDirectAlign * kDirectAlign);
        auto bounce = bounce_->at_least(blocks);
        if (!bounce) return std::move(bounce).error();
        auto got = read_some(*bounce, block);
        if (!got) return got;
        if (*got <= skip) return std::size_t{0};
        const std::size_t n = std::min(into.size(), *got - skip);
        std::memcpy(into.data(), bounce->data() + skip, n);
        return n;
    }

    // Checked after each read: a blob rewritten in place (`cp` over it, rsync
    // --inplace) while its image is mounted would mix two images' bytes in one cache
    // file, which the size check at open (open_with_size) cannot see. Its modification
    // time, not its ctime, so that a chmod or chown of the blob stops nothing.
    Status unchanged() const {
        struct stat now {};
        if (::fstat(fd_.get(), &now) < 0) return sys_error("inspecting the blob after reading it");
        if (static_cast<std::uint64_t>(now.st_size) == size_ && now.st_mtim.tv_sec == modified_.tv_sec &&
            now.st_mtim.tv_nsec == modified_.tv_nsec)
            return {};
        return sys_error(EIO, fmt::format("the blob file was changed since its object was opened ({} bytes then, "
                                          "{} now, and modified since): its bytes are no longer the image's",
                                          size_, now.st_size));
    }

    unique_fd fd_;
    std::uint64_t size_;
    timespec modified_;
    std::shared_ptr<DirectBounce> bounce_;
};

// Whether `fd` takes direct reads at kDirectAlign: its filesystem says so (Linux
// 6.1+), and its alignment divides ours. A filesystem that says nothing is read
// through the page cache.
bool takes_direct_reads(int fd) {
    struct statx stx {};
    if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) < 0) return false;
    if ((stx.stx_mask & STATX_DIOALIGN) == 0 || stx.stx_dio_offset_align == 0 || stx.stx_dio_mem_align == 0)
        return false;
    return kDirectAlign % stx.stx_dio_offset_align == 0 && kDirectAlign % stx.stx_dio_mem_align == 0;
}

unique_fd open_beneath(int dir, const std::string& path, std::uint64_t flags) {
    open_how how{};
    how.flags = flags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, dir, path.c_str(), &how, sizeof how);
    if (fd < 0 && errno == ENOSYS) {
        // systemd's RestrictSUIDSGID= (and other seccomp filters that cannot inspect
        // open_how) fail openat2 with ENOSYS. The name is one validated component, so
        // openat with O_NOFOLLOW stays beneath the directory just the same.
        fd = ::openat(dir, path.c_str(), static_cast<int>(flags) | O_NOFOLLOW);
    }
    return unique_fd(static_cast<int>(fd));
}

}  // namespace

LocalDirBackend::LocalDirBackend(unique_fd dir) : dir_(std::move(dir)), bounce_(std::make_shared<DirectBounce>()) {}
LocalDirBackend::~LocalDirBackend() = default;

Result<std::unique_ptr<BlobSource>> LocalDirBackend::open(std::string_view name) {
    if (auto valid = validate_blob_name(name); !valid) return std::move(valid).error();
    const std::string path(name);
    // O_NONBLOCK: a FIFO or device in the blob directory must fail the S_ISREG check
    // below, not block the worker in open() (it changes nothing for regular files).
    constexpr std::uint64_t kFlags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    unique_fd blob = open_beneath(dir_.get(), path, kFlags | O_DIRECT);
    const bool direct = blob && takes_direct_reads(blob.get());
    // EINVAL: the filesystem takes no direct I/O at all. One that takes it at an
    // alignment other than ours is read through the page cache too.
    if (!direct && (blob || errno == EINVAL)) blob = open_beneath(dir_.get(), path, kFlags);
    if (!blob) return sys_error("opening the blob");
    struct stat st {};
    if (::fstat(blob.get(), &st) < 0) return sys_error("inspecting the blob");
    if (!S_ISREG(st.st_mode)) return sys_error(EINVAL, "the blob is not a regular file");
    return std::unique_ptr<BlobSource>(
        std::make_unique<LocalBlob>(std::move(blob), st, direct ? bounce_ : nullptr));
}

Result<std::unique_ptr<BlobSource>> LocalDirBackend::open_with_size(std::string_view name, std::uint64_t size) {
    auto blob = open(name);
    // A file's size is what it is now: one replaced while its image is mounted would
    // mix two images' bytes in one cache file.
    if (blob && (*blob)->size() != size)
        return sys_error(EIO, fmt::format("the blob has {} bytes now, {} when the object was opened",
                                          (*blob)->size(), size));
    return blob;
}

std::unique_ptr<BlobSource> LocalDirBackend::open_ahead(std::string_view name, std::uint64_t size) {
    auto blob = open_with_size(name, size);
    return blob ? std::move(*blob) : nullptr;
}

}  // namespace cfs::worker
