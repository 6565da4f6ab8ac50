// LocalDirBackend on a real directory: opening beneath it, refusals, and reads with
// direct I/O (the build machine's filesystem must take it for those to run).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "tests/unit/blob_reads.h"
#include "worker/aligned_bytes.h"
#include "worker/local_backend.h"

using namespace cfs;
using namespace cfs::worker;
using testing::pattern;
using testing::read_range;

namespace {

struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::filesystem::path& parent = std::filesystem::temp_directory_path()) {
        std::string tmpl = (parent / "cfs-backend-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    void write(const std::string& name, const std::string& data) const {
        std::ofstream out(path / name, std::ios::binary);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        REQUIRE(out.good());
    }
    [[nodiscard]] unique_fd open() const {
        const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        return unique_fd(fd);
    }
};

bool have_openat2() {
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC;
    const long fd = ::syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
    if (fd >= 0) ::close(static_cast<int>(fd));
    return fd >= 0 || errno != ENOSYS;
}

int open_errno(LocalDirBackend& backend, std::string_view name) {
    auto r = backend.open(name);
    if (r.ok()) return 0;
    return r.error().errnum;
}

}  // namespace

TEST_CASE("LocalDirBackend: opens a regular file and reads ranges") {
    if (!have_openat2()) {
        MESSAGE("openat2 unavailable; skipped");
        return;
    }
    TempDir dir;
    const std::string data = pattern(10000);
    dir.write("blob", data);
    LocalDirBackend backend(dir.open());
    auto blob = backend.open("blob");
    REQUIRE_MESSAGE(blob.ok(), blob.error().message());
    CHECK((*blob)->size() == 10000);

    std::vector<std::byte> buf(4096);
    auto n = (*blob)->read_at(buf, 0);
    REQUIRE(n.ok());
    CHECK(*n == 4096);
    CHECK(std::memcmp(buf.data(), data.data(), 4096) == 0);

    n = (*blob)->read_at(buf, 8192);
    REQUIRE(n.ok());
    CHECK(*n == 10000 - 8192);
    CHECK(std::memcmp(buf.data(), data.data() + 8192, 10000 - 8192) == 0);

    n = (*blob)->read_at(buf, 10000);
    REQUIRE(n.ok());
    CHECK(*n == 0);
    n = (*blob)->read_at(buf, 1 << 30);
    REQUIRE(n.ok());
    CHECK(*n == 0);

    // A spare opens a local blob ahead of need; one that is missing is left to the READ.
    auto ahead = backend.open_ahead("blob", 10000);
    REQUIRE(ahead != nullptr);
    CHECK(ahead->size() == 10000);
    n = ahead->read_at(buf, 0);
    REQUIRE(n.ok());
    CHECK(std::memcmp(buf.data(), data.data(), 4096) == 0);
    CHECK(backend.open_ahead("missing", 10000) == nullptr);
}

TEST_CASE("LocalDirBackend: a blob whose size is no longer the object's is refused, and not opened ahead") {
    if (!have_openat2()) {
        MESSAGE("openat2 unavailable; skipped");
        return;
    }
    TempDir dir;
    dir.write("replaced", pattern(12288));  // 8192 bytes when its object was opened
    LocalDirBackend backend(dir.open());
    auto refused = backend.open_with_size("replaced", 8192);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().errnum == EIO);
    CHECK(refused.error().message().find("the blob has 12288 bytes now, 8192 when the object was opened") !=
          std::string::npos);
    // Two images' bytes never mix: a spare leaves it to the READ, which says why.
    CHECK(backend.open_ahead("replaced", 8192) == nullptr);
    auto same = backend.open_with_size("replaced", 12288);
    REQUIRE_MESSAGE(same.ok(), same.error().message());
    CHECK((*same)->size() == 12288);
}

// `cp new.img blobs/img` rewrites the file an open object reads (same inode): those
// bytes are another image's, so reads fail rather than mix them into the cache file.
TEST_CASE("LocalDirBackend: a blob rewritten in place after it was opened fails its reads with EIO") {
    if (!have_openat2()) return;
    TempDir dir;
    dir.write("grown", pattern(5000));
    dir.write("same_size", pattern(5000));
    dir.write("chmodded", pattern(5000));
    LocalDirBackend backend(dir.open());
    auto grown = backend.open("grown");
    auto same_size = backend.open("same_size");
    auto chmodded = backend.open("chmodded");
    REQUIRE((grown && same_size && chmodded));
    std::vector<std::byte> buf(8192);

    dir.write("grown", pattern(9000, 1));
    auto n = (*grown)->read_at(buf, 0);
    REQUIRE_FALSE(n);
    CHECK(n.error().errnum == EIO);
    CHECK(n.error().message().find("5000 bytes then, 9000 now") != std::string::npos);

    // The same size: its modification time tells (set apart from the first, which a
    // write within one clock tick might not change).
    dir.write("same_size", pattern(5000, 1));
    const timespec later[2] = {{0, UTIME_OMIT}, {1000000000, 0}};
    REQUIRE(::utimensat(AT_FDCWD, (dir.path / "same_size").c_str(), later, 0) == 0);
    n = (*same_size)->read_at(buf, 0);
    REQUIRE_FALSE(n);
    CHECK(n.error().errnum == EIO);

    // A chmod changes no byte: reads go on.
    REQUIRE(::chmod((dir.path / "chmodded").c_str(), 0400) == 0);
    n = (*chmodded)->read_at(buf, 0);
    REQUIRE_MESSAGE(n, n.error().message());
    CHECK(*n == 5000);
    CHECK(std::memcmp(buf.data(), pattern(5000).data(), 5000) == 0);
}

TEST_CASE("LocalDirBackend: a symlink inside the directory is followed") {
    if (!have_openat2()) return;
    TempDir dir;
    dir.write("real", "abc");
    std::filesystem::create_symlink("real", dir.path / "alias");
    LocalDirBackend backend(dir.open());
    auto blob = backend.open("alias");
    REQUIRE_MESSAGE(blob.ok(), blob.error().message());
    CHECK((*blob)->size() == 3);
}

TEST_CASE("LocalDirBackend: refusals carry the errno for copen") {
    if (!have_openat2()) {
        MESSAGE("openat2 unavailable; skipped");
        return;
    }
    TempDir dir;
    dir.write("blob", "abc");
    std::filesystem::create_directory(dir.path / "subdir");
    std::filesystem::create_symlink("/etc/passwd", dir.path / "escape-abs");
    std::filesystem::create_symlink("../" + dir.path.filename().string() + "/blob", dir.path / "escape-rel");
    std::filesystem::create_symlink("/proc/self/fd/0", dir.path / "magic");
    LocalDirBackend backend(dir.open());

    CHECK(open_errno(backend, "missing") == ENOENT);
    CHECK(open_errno(backend, "subdir") == EINVAL);
    CHECK(open_errno(backend, "escape-abs") == EXDEV);
    CHECK(open_errno(backend, "escape-rel") == EXDEV);
    CHECK(open_errno(backend, "magic") == EXDEV);
    CHECK(open_errno(backend, "..") == EINVAL);
    CHECK(open_errno(backend, ".") == EINVAL);
    CHECK(open_errno(backend, "../blob") == EINVAL);
    CHECK(open_errno(backend, "subdir/../blob") == EINVAL);
    CHECK(open_errno(backend, "") == EINVAL);
    CHECK(open_errno(backend, std::string(256, 'x')) == ENAMETOOLONG);
    CHECK(open_errno(backend, "blob") == 0);
}

// A FIFO in the blob directory named by a mount's fsid= must not block the worker in
// open() (every request it should answer would stall): EINVAL at once.
TEST_CASE("LocalDirBackend: a FIFO in the blob directory fails at once, without blocking") {
    if (!have_openat2()) return;
    TempDir dir;
    REQUIRE(::mkfifo((dir.path / "fifo").c_str(), 0600) == 0);
    unique_fd dir_fd = dir.open();
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        LocalDirBackend backend(std::move(dir_fd));
        auto r = backend.open("fifo");
        ::_exit(r.ok() ? 1 : (r.error().errnum == EINVAL ? 0 : 2));
    }
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 300 && done == 0; ++i) {
        done = ::waitpid(child, &status, WNOHANG);
        if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (done == 0) {
        ::kill(child, SIGKILL);
        ::waitpid(child, &status, 0);
        FAIL_CHECK("open() of a FIFO blob still blocked after 3 s");
        return;
    }
    REQUIRE(WIFEXITED(status));
    CHECK_MESSAGE(WEXITSTATUS(status) == 0, "open() of a FIFO did not fail with EINVAL");
}


namespace {

// How the fd that has `path` open in this process was opened (its fdinfo flags);
// 0 if none has.
long open_flags_of(const std::filesystem::path& path) {
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        if (std::filesystem::read_symlink(e.path(), ec) != path) continue;
        std::ifstream info("/proc/self/fdinfo/" + e.path().filename().string());
        for (std::string key; info >> key;) {
            if (key == "flags:") {
                std::string octal;
                info >> octal;
                return std::strtol(octal.c_str(), nullptr, 8);
            }
        }
    }
    return 0;
}

// Whether files in `dir` take direct I/O at 4 KiB (as LocalBlob asks statx).
bool takes_direct_io(const std::filesystem::path& dir) {
    const std::string probe = (dir / "probe").string();
    unique_fd fd(::open(probe.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600));
    if (!fd) return false;
    struct statx stx {};
    const bool ok = ::statx(fd.get(), "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
                    (stx.stx_mask & STATX_DIOALIGN) != 0 && stx.stx_dio_offset_align != 0 &&
                    stx.stx_dio_mem_align != 0 && 4096 % stx.stx_dio_offset_align == 0 &&
                    4096 % stx.stx_dio_mem_align == 0;
    ::unlink(probe.c_str());
    return ok;
}

}  // namespace

TEST_CASE("LocalDirBackend: a blob is read with direct I/O where its filesystem takes it, and every range "
          "reads the blob's bytes: aligned, unaligned, across its end, into an unaligned buffer") {
    if (!have_openat2()) return;
    // /tmp may be a tmpfs, which takes no direct I/O before Linux 6.6; the working
    // directory (ctest's is the build directory) is on a disk.
    std::optional<TempDir> where;
    for (const auto& parent : {std::filesystem::temp_directory_path(), std::filesystem::current_path()}) {
        where.emplace(parent);
        if (takes_direct_io(where->path)) break;
        where.reset();
    }
    if (!where) {
        MESSAGE("neither the temporary nor the working directory takes direct I/O at 4 KiB; skipped");
        return;
    }
    const TempDir& dir = *where;
    // Not a whole number of blocks: the last one is read short.
    const std::string data = pattern(5 * 1024 * 1024 + 1234);
    dir.write("blob", data);
    LocalDirBackend backend(dir.open());
    auto opened = backend.open("blob");
    REQUIRE_MESSAGE(opened.ok(), opened.error().message());
    BlobSource& blob = **opened;
    CHECK((open_flags_of(dir.path / "blob") & O_DIRECT) != 0);

    // An aligned buffer, as the worker's; then one offset by a byte.
    constexpr std::size_t kBuffer = 1 << 20;
    const AlignedBytes aligned = allocate_aligned(4096, 4 * kBuffer);
    REQUIRE(aligned);
    struct Case {
        std::uint64_t offset;
        std::size_t length;
        std::size_t buffer_shift;
    };
    const Case cases[] = {
        {0, kBuffer, 0},                     // whole blocks
        {4096, 3 * 4096, 0},                 // a few
        {100, 5000, 0},                      // neither end aligned
        {4095, 2, 0},                        // across a block boundary
        {8192, 4096 + 17, 0},                // blocks, then a piece
        {8192, 3 * 4096, 1},                 // an unaligned buffer
        {3 * 4096 + 5, 3 * kBuffer + 99, 7},  // a large one: through the bounce buffer, a MiB at a time
        {data.size() - 5000, 8192, 0},       // across the end: short
        {data.size() / 4096 * 4096, 4096, 0},  // the last, partial block
        {data.size() - 1, 4096, 3},
        {data.size(), 4096, 0},              // at the end: nothing
        {data.size() + 8192, 4096, 0},
    };
    for (const Case& c : cases) {
        CAPTURE(c.offset);
        CAPTURE(c.length);
        CAPTURE(c.buffer_shift);
        std::span<std::byte> into(aligned.get() + c.buffer_shift, c.length);
        auto got = blob.read_at(into, c.offset);
        REQUIRE_MESSAGE(got.ok(), got.error().message());
        const std::size_t expect = c.offset >= data.size() ? 0 : std::min<std::size_t>(c.length, data.size() - c.offset);
        REQUIRE(*got == expect);
        CHECK(std::memcmp(into.data(), data.data() + std::min<std::size_t>(c.offset, data.size()), expect) == 0);
    }
    // And the worker's way: consecutive aligned chunks to the end.
    std::string whole;
    for (std::uint64_t pos = 0;; pos += kBuffer) {
        auto got = blob.read_at(std::span(aligned.get(), kBuffer), pos);
        REQUIRE(got.ok());
        whole.append(reinterpret_cast<const char*>(aligned.get()), *got);
        if (*got < kBuffer) break;
    }
    CHECK(whole == data);
}

TEST_CASE("LocalDirBackend: a blob whose filesystem takes no direct I/O is read through the page cache") {
    if (!have_openat2()) return;
    // tmpfs: no STATX_DIOALIGN (and before Linux 6.6 no O_DIRECT at all).
    const std::filesystem::path shm = "/dev/shm";
    if (!std::filesystem::is_directory(shm) || takes_direct_io(shm)) {
        MESSAGE("no /dev/shm without direct I/O here; skipped");
        return;
    }
    std::string tmpl = (shm / "cfs-backend-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    const std::filesystem::path path = tmpl;
    const std::string data = pattern(3 * 4096 + 10);
    {
        std::ofstream(path / "blob", std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
        unique_fd dir_fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        REQUIRE(dir_fd);
        LocalDirBackend backend(std::move(dir_fd));
        auto blob = backend.open("blob");
        REQUIRE_MESSAGE(blob.ok(), blob.error().message());
        CHECK((open_flags_of(path / "blob") & O_DIRECT) == 0);
        CHECK(read_range(**blob, 100, 5000) == data.substr(100, 5000));
        CHECK(read_range(**blob, 2 * 4096, 8192) == data.substr(2 * 4096));
    }
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}
