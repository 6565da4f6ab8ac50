#include "tests/unit/test_fds.h"
#include "worker/request_handler.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/openat2.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <thread>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/log.h"
#include "tests/unit/blob_reads.h"
#include "tests/unit/fake_cache_file.h"
#include "worker/local_backend.h"
#include "worker/verifying_backend.h"

namespace {

using namespace cfs;
using namespace cfs::worker;
using namespace std::string_view_literals;
using testing::pattern;

// ---------------------------------------------------------------------------------
// Kernel messages, built byte by byte.

class Bytes {
public:
    Bytes& u32(std::uint32_t v) { return raw(&v, 4); }
    Bytes& u64(std::uint64_t v) { return raw(&v, 8); }
    Bytes& str(std::string_view s) { return raw(s.data(), s.size()); }
    Bytes& fix_len() {
        const auto n = static_cast<std::uint32_t>(out_.size());
        std::memcpy(out_.data() + 8, &n, 4);
        return *this;
    }
    [[nodiscard]] std::span<const std::byte> span() const { return out_; }

private:
    Bytes& raw(const void* p, std::size_t n) {
        const auto* b = static_cast<const std::byte*>(p);
        out_.insert(out_.end(), b, b + n);
        return *this;
    }
    std::vector<std::byte> out_;
};

Bytes open_msg(std::uint32_t msg_id, std::uint32_t object_id, std::string_view cookie, int fd,
               std::string_view volume_with_nul = "erofs,vol\0"sv) {
    Bytes b;
    b.u32(msg_id).u32(0).u32(0).u32(object_id);
    b.u32(static_cast<std::uint32_t>(volume_with_nul.size()))
        .u32(static_cast<std::uint32_t>(cookie.size()))
        .u32(static_cast<std::uint32_t>(fd))
        .u32(0)
        .str(volume_with_nul)
        .str(cookie);
    return b.fix_len();
}

Bytes read_msg(std::uint32_t msg_id, std::uint32_t object_id, std::uint64_t off, std::uint64_t len) {
    Bytes b;
    b.u32(msg_id).u32(2).u32(32).u32(object_id).u64(off).u64(len);
    return b;
}

Bytes close_msg(std::uint32_t msg_id, std::uint32_t object_id) {
    Bytes b;
    b.u32(msg_id).u32(1).u32(16).u32(object_id);
    return b;
}

// ---------------------------------------------------------------------------------
// Helpers.

// A real descriptor standing in for a cachefiles anon fd.
int make_anon_fd() {
    const int fd = ::memfd_create("fake-anon", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    return fd;
}

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }
bool fd_is_closed(int fd) { return ::fcntl(fd, F_GETFD) < 0 && errno == EBADF; }

// ---------------------------------------------------------------------------------
// Fakes. They share one event log so the order of calls across them can be checked.

using Events = std::vector<std::string>;

struct CacheWrite {
    int fd;
    std::uint64_t offset;
    std::string bytes;
};

class FakeKernel final : public KernelIo {
public:
    explicit FakeKernel(Events& events) : events_(events) {}

    Result<std::size_t> read_request(std::span<std::byte>) override { return std::size_t{0}; }
    Status write_command(std::string_view command) override {
        events_.push_back("cmd:" + std::string(command));
        commands.emplace_back(command);
        if (fail_commands) return sys_error(EIO, "writing a command");
        return {};
    }
    Status write_cache(int anon_fd, std::span<const std::byte> data, std::uint64_t offset) override {
        const auto address = reinterpret_cast<std::uintptr_t>(data.data());
        CHECK_MESSAGE(address % kCacheBlockSize == 0, "unaligned buffer");
        CHECK_MESSAGE(offset % kCacheBlockSize == 0, "unaligned offset " << offset);
        CHECK_MESSAGE(data.size() % kCacheBlockSize == 0, "unaligned length " << data.size());
        CHECK_MESSAGE(fd_is_open(anon_fd), "write to a closed fd " << anon_fd);
        writes.push_back({anon_fd, offset, std::string(reinterpret_cast<const char*>(data.data()), data.size())});
        if (fail_writes) return sys_error(EIO, "writing the cache");
        if (writes_without_room > 0 || (no_room_from && offset >= *no_room_from)) {
            if (writes_without_room > 0) --writes_without_room;
            return sys_error(ENOBUFS, "writing the cache");
        }
        cache_files[anon_fd].write(offset, data.size());
        return {};
    }
    Result<std::uint64_t> seek(int anon_fd, std::uint64_t pos, Seek what) override {
        CHECK_MESSAGE(fd_is_open(anon_fd), "seek on a closed fd " << anon_fd);
        if (fail_seeks) return sys_error(ENOBUFS, "looking into the cache file");
        const auto& file = cache_files[anon_fd];
        return what == Seek::data ? file.data_from(pos) : file.hole_from(pos);
    }
    Status complete_read(int anon_fd, std::uint32_t msg_id) override {
        events_.push_back("complete:" + std::to_string(msg_id));
        completed.emplace_back(anon_fd, msg_id);
        return {};
    }
    bool is_cache_anon_fd(int fd) override { return anon.contains(fd); }
    void wait(std::chrono::milliseconds how_long) override { waited += how_long; }
    std::chrono::steady_clock::time_point now() override { return std::chrono::steady_clock::time_point{} + waited; }

    std::vector<std::string> commands;
    // The next this many cache writes find the cache full (ENOBUFS).
    unsigned writes_without_room = 0;
    std::optional<std::uint64_t> no_room_from;  // writes at or past it always do
    std::chrono::milliseconds waited{0};
    std::vector<CacheWrite> writes;
    std::vector<std::pair<int, std::uint32_t>> completed;
    std::set<int> anon;
    bool fail_commands = false;
    bool fail_writes = false;
    bool fail_seeks = false;
    std::map<int, testing::FakeCacheFile> cache_files;  // what each anon fd's cache file holds

    [[nodiscard]] std::uint64_t bytes_written() const {
        std::uint64_t n = 0;
        for (const auto& w : writes) n += w.bytes.size();
        return n;
    }

private:
    Events& events_;
};

class FakeBlob final : public BlobSource {
public:
    using ReadHook = std::function<void(std::uint64_t offset)>;
    FakeBlob(std::string data, std::optional<std::uint64_t> fail_at, std::vector<std::string>* trace = nullptr,
             std::shared_ptr<const int> held = nullptr, const ReadHook* on_read = nullptr)
        : data_(std::move(data)), fail_at_(fail_at), trace_(trace), held_(std::move(held)), on_read_(on_read) {}
    std::uint64_t size() const override { return data_.size(); }
    void will_need(std::uint64_t offset, std::uint64_t length) override {
        if (trace_) trace_->push_back(fmt::format("need {}+{}", offset, length));
    }
    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override {
        if (trace_) trace_->push_back(fmt::format("read {}+{}", offset, buffer.size()));
        if (on_read_ && *on_read_) (*on_read_)(offset);
        if (fail_at_ && offset + buffer.size() > *fail_at_) return sys_error(EIO, "reading the blob");
        if (offset >= data_.size()) return std::size_t{0};
        const std::size_t n = std::min<std::size_t>(buffer.size(), data_.size() - offset);
        std::memcpy(buffer.data(), data_.data() + offset, n);
        return n;
    }

private:
    std::string data_;
    std::optional<std::uint64_t> fail_at_;
    std::vector<std::string>* trace_;
    std::shared_ptr<const int> held_;  // counts the blobs still open (FakeBackend::open_ahead)
    const ReadHook* on_read_;
};

class FakeBackend final : public BlobBackend {
public:
    Result<std::unique_ptr<BlobSource>> open(std::string_view name) override {
        asked.emplace_back(name);
        if (auto e = errors.find(std::string(name)); e != errors.end()) return sys_error(e->second, "opening");
        auto it = blobs.find(std::string(name));
        if (it == blobs.end()) return sys_error(ENOENT, "opening the blob");
        std::optional<std::uint64_t> fail;
        if (auto f = fail_reads_at.find(std::string(name)); f != fail_reads_at.end()) fail = f->second;
        return std::unique_ptr<BlobSource>(std::make_unique<FakeBlob>(it->second, fail, &trace, nullptr, &on_read));
    }
    Result<std::unique_ptr<BlobSource>> open_with_size(std::string_view name, std::uint64_t size) override {
        with_size.emplace_back(name, size);
        return open(name);
    }
    std::unique_ptr<BlobSource> open_ahead(std::string_view name, std::uint64_t size) override {
        if (!opens_ahead) return nullptr;
        ahead.emplace_back(name, size);
        auto it = blobs.find(std::string(name));
        if (it == blobs.end()) return nullptr;
        return std::make_unique<FakeBlob>(it->second, std::nullopt, &trace, opened_ahead_token);
    }
    // How many blobs opened ahead are still open: a real one holds an fd.
    [[nodiscard]] long open_ahead_count() const { return opened_ahead_token.use_count() - 1; }

    bool opens_ahead = false;  // as a local directory does; a remote store does not
    std::vector<std::pair<std::string, std::uint64_t>> ahead;  // open_ahead's, not in `asked`
    std::map<std::string, std::string> blobs;
    std::map<std::string, int> errors;                  // name -> errno
    std::map<std::string, std::uint64_t> fail_reads_at;  // name -> reads reaching past this fail
    std::vector<std::string> asked;
    std::vector<std::pair<std::string, std::uint64_t>> with_size;  // open_with_size's, also in `asked`
    std::vector<std::string> trace;  // every blob's reads and will_need hints, in order
    std::shared_ptr<const int> opened_ahead_token = std::make_shared<const int>(0);
    FakeBlob::ReadHook on_read;  // runs as a blob opened by open() is read: another worker's doing meanwhile
};

class FakeLink final : public SupervisorLink {
public:
    explicit FakeLink(Events& events) : events_(events) {}

    Status object_opened(const wire::ObjectDescription& object, int anon_fd) override {
        events_.push_back("opened:" + std::to_string(object.object_id));
        opened.push_back(object);
        opened_fds.push_back(anon_fd);
        CHECK_MESSAGE(fd_is_open(anon_fd), "object_opened with a closed fd");
        if (broken) return logic_error("the supervisor closed the connection");
        return {};
    }
    Status object_copened(std::uint32_t object_id) override {
        events_.push_back("copened:" + std::to_string(object_id));
        if (broken) return logic_error("the supervisor closed the connection");
        return {};
    }
    Result<std::optional<SharedObject>> query_object(std::uint32_t object_id) override {
        events_.push_back("query:" + std::to_string(object_id));
        if (broken) return logic_error("the supervisor closed the connection");
        // What the supervisor's socket delivers before the answer (an ObjectShare).
        if (while_asked) while_asked();
        auto it = known.find(object_id);
        if (it == known.end()) return std::optional<SharedObject>{};
        SharedObject shared;
        shared.description = it->second;
        const int fd = make_anon_fd();
        handed_out_fds.push_back(fd);
        shared.anon_fd = unique_fd(fd);
        return std::optional<SharedObject>{std::move(shared)};
    }
    Status object_closed(std::uint32_t object_id) override {
        events_.push_back("closed:" + std::to_string(object_id));
        closed.push_back(object_id);
        if (broken) return logic_error("the supervisor closed the connection");
        return {};
    }

    std::vector<wire::ObjectDescription> opened;
    std::vector<int> opened_fds;
    std::vector<std::uint32_t> closed;
    std::map<std::uint32_t, wire::ObjectDescription> known;
    std::vector<int> handed_out_fds;
    bool broken = false;
    std::function<void()> while_asked;

private:
    Events& events_;
};

struct Fixture {
    Events events;
    FakeKernel kernel{events};
    FakeBackend backend;
    FakeLink link{events};
    RequestHandler handler{kernel, backend, link};

    // A fresh descriptor the fake kernel treats as a cachefiles anon fd.
    int anon_fd() {
        const int fd = make_anon_fd();
        kernel.anon.insert(fd);
        return fd;
    }

    // Opens `name` as `object_id` and checks it went through; returns its anon fd.
    int open_object(std::uint32_t object_id, const std::string& name, std::uint32_t msg_id = 1) {
        const int fd = anon_fd();
        REQUIRE(handler.handle(open_msg(msg_id, object_id, name, fd).span()).ok());
        REQUIRE(!kernel.commands.empty());
        REQUIRE(kernel.commands.back() ==
                kmsg::format_copen(msg_id, static_cast<std::int64_t>(backend.blobs.at(name).size())));
        kernel.commands.clear();
        events.clear();
        return fd;
    }
};

// Checks that the cache writes, laid end to end, are exactly `expected` from `offset`.
void check_contiguous(const std::vector<CacheWrite>& writes, std::uint64_t offset, const std::string& expected) {
    std::uint64_t pos = offset;
    std::string all;
    for (const auto& w : writes) {
        CHECK(w.offset == pos);
        pos += w.bytes.size();
        all += w.bytes;
    }
    REQUIRE(all.size() == expected.size());
    CHECK(all == expected);
}

}  // namespace

// ---------------------------------------------------------------------------------
// OPEN

TEST_CASE("worker: OPEN of an existing blob: object_opened, then copen, then object_copened") {
    Fixture f;
    f.backend.blobs["img"] = pattern(12345);
    const int fd = f.anon_fd();
    auto r = f.handler.handle(open_msg(9, 42, "img", fd).span());
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(f.events == Events{"opened:42", "cmd:copen 9,12345", "copened:42"});
    REQUIRE(f.link.opened.size() == 1);
    CHECK(f.link.opened[0].object_id == 42);
    CHECK(f.link.opened[0].size == 12345);
    CHECK(f.link.opened[0].volume_key == "erofs,vol");
    CHECK(f.link.opened[0].cookie_key == "img");
    CHECK(f.link.opened_fds == std::vector<int>{fd});
    CHECK(f.backend.asked == std::vector<std::string>{"img"});
    CHECK(f.handler.object_count() == 1);
    CHECK(f.handler.counters().opens == 1);
    CHECK(f.handler.counters().opens_refused == 0);
    // The worker keeps the anon fd, now close-on-exec.
    REQUIRE(fd_is_open(fd));
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("worker: OPEN of a missing blob replies -ENOENT and closes the anon fd") {
    Fixture f;
    const int fd = f.anon_fd();
    REQUIRE(f.handler.handle(open_msg(3, 7, "nope", fd).span()).ok());
    CHECK(f.kernel.commands == std::vector<std::string>{"copen 3,-2"});
    CHECK(fd_is_closed(fd));
    CHECK(f.link.opened.empty());
    CHECK(f.link.closed.empty());
    CHECK(f.handler.object_count() == 0);
    CHECK(f.handler.counters().opens_refused == 1);
}

TEST_CASE("worker: OPEN refused by the backend passes its errno, EIO when it has none") {
    Fixture f;
    f.backend.errors["denied"] = EACCES;
    f.backend.errors["weird"] = 0;
    const int fd1 = f.anon_fd();
    REQUIRE(f.handler.handle(open_msg(1, 1, "denied", fd1).span()).ok());
    const int fd2 = f.anon_fd();
    REQUIRE(f.handler.handle(open_msg(2, 2, "weird", fd2).span()).ok());
    CHECK(f.kernel.commands == std::vector<std::string>{"copen 1,-13", "copen 2,-5"});
    CHECK(fd_is_closed(fd1));
    CHECK(fd_is_closed(fd2));
}

TEST_CASE("worker: a volume a [[volume]] names is served by its store alone, any other by [blobs]") {
    Events events;
    FakeKernel kernel{events};
    FakeLink link{events};
    FakeBackend blobs, store_a;
    blobs.blobs["img"] = pattern(4096, 1);
    blobs.blobs["only_in_blobs"] = pattern(4096, 2);
    store_a.blobs["img"] = pattern(8192, 3);  // the same name, other bytes
    VolumeRouter router(blobs);
    router.route("erofs,a", store_a);
    RequestHandler handler(kernel, std::move(router), link);
    auto open = [&](std::uint32_t id, std::string_view name, std::string_view volume) {
        const int fd = make_anon_fd();
        kernel.anon.insert(fd);
        REQUIRE(handler.handle(open_msg(id, id, name, fd, volume).span()).ok());
        return fd;
    };
    (void)open(1, "img", "erofs,a\0"sv);
    (void)open(2, "img", "erofs,b\0"sv);
    (void)open(3, "only_in_blobs", "erofs,a\0"sv);
    (void)open(4, "img", "erofs,a.b\0"sv);  // not "erofs,a": a name is matched whole
    CHECK(kernel.commands == std::vector<std::string>{"copen 1,8192", "copen 2,4096", "copen 3,-2", "copen 4,4096"});
    CHECK(store_a.asked == std::vector<std::string>{"img", "only_in_blobs"});
    CHECK(blobs.asked == std::vector<std::string>{"img", "img"});

    // An object another worker opened is read through its volume's store too.
    link.known[77] = wire::ObjectDescription{77, 8192, "erofs,a", "img"};
    REQUIRE(handler.handle(read_msg(31, 77, 4096, 4096).span()).ok());
    REQUIRE(kernel.writes.size() == 1);
    CHECK(kernel.writes[0].bytes == store_a.blobs["img"].substr(4096, 4096));
}

TEST_CASE("worker: OPEN naming an fd that is not a cachefiles anon fd replies -EIO and leaves it alone") {
    Fixture f;
    f.backend.blobs["img"] = "x";
    const int fd = make_anon_fd();  // not registered as anon
    REQUIRE(f.handler.handle(open_msg(4, 5, "img", fd).span()).ok());
    CHECK(f.kernel.commands == std::vector<std::string>{"copen 4,-5"});
    CHECK(fd_is_open(fd));
    CHECK(f.backend.asked.empty());
    CHECK(f.link.opened.empty());
    ::close(fd);
}

TEST_CASE("worker: OPEN with a bad blob name replies -EINVAL (backend validating, as LocalDirBackend does)") {
    // The fake rejects like the real backend would; see the BUG case below for the
    // handler's own check.
    Fixture f;
    for (const std::string name : {"../x", "a/b", ".."}) {
        CAPTURE(name);
        f.backend.errors[name] = EINVAL;
        f.kernel.commands.clear();
        const int fd = f.anon_fd();
        REQUIRE(f.handler.handle(open_msg(8, 6, name, fd).span()).ok());
        CHECK(f.kernel.commands == std::vector<std::string>{"copen 8,-22"});
        CHECK(fd_is_closed(fd));
    }
    CHECK(f.link.opened.empty());
}

// blob_backend.h promises backends a name already validated as a plain file name.
TEST_CASE("worker: OPEN with a bad blob name never reaches the backend") {
    Fixture f;
    f.backend.blobs["../x"] = "secret";
    f.backend.blobs["a/b"] = "secret";
    for (const std::string name : {"../x", "a/b"}) {
        CAPTURE(name);
        f.kernel.commands.clear();
        const int fd = f.anon_fd();
        REQUIRE(f.handler.handle(open_msg(8, 6, name, fd).span()).ok());
        CHECK(f.kernel.commands == std::vector<std::string>{"copen 8,-22"});
        CHECK(fd_is_closed(fd));
    }
    CHECK(f.backend.asked.empty());
    CHECK(f.link.opened.empty());
}

TEST_CASE("worker: a broken supervisor link during OPEN is returned, and no copen is sent") {
    Fixture f;
    f.backend.blobs["img"] = "abc";
    f.link.broken = true;
    const int fd = f.anon_fd();
    auto r = f.handler.handle(open_msg(2, 3, "img", fd).span());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("supervisor closed") != std::string::npos);
    CHECK(f.kernel.commands.empty());
    CHECK(f.handler.object_count() == 0);
}

TEST_CASE("worker: a copen the kernel refuses reports the object closed and keeps nothing") {
    Fixture f;
    f.backend.blobs["img"] = "abc";
    f.kernel.fail_commands = true;
    const int fd = f.anon_fd();
    REQUIRE(f.handler.handle(open_msg(2, 3, "img", fd).span()).ok());
    CHECK(f.events == Events{"opened:3", "cmd:copen 2,3", "closed:3"});
    CHECK(f.handler.object_count() == 0);
    CHECK(fd_is_closed(fd));
}

TEST_CASE("worker: malformed OPEN closes the anon fd and replies -EINVAL") {
    Fixture f;
    f.backend.blobs["img"] = "abc";
    const int fd = f.anon_fd();
    // Volume key without its NUL.
    REQUIRE(f.handler.handle(open_msg(13, 4, "img", fd, "erofs").span()).ok());
    CHECK(f.kernel.commands == std::vector<std::string>{"copen 13,-22"});
    CHECK(fd_is_closed(fd));
    CHECK(f.backend.asked.empty());
    CHECK(f.link.opened.empty());
    CHECK(f.handler.counters().malformed == 1);
}

TEST_CASE("worker: malformed OPEN naming a non-anon fd leaves that fd open") {
    Fixture f;
    const int fd = make_anon_fd();  // not registered
    REQUIRE(f.handler.handle(open_msg(14, 4, "img", fd, "erofs").span()).ok());
    CHECK(f.kernel.commands == std::vector<std::string>{"copen 14,-22"});
    CHECK(fd_is_open(fd));
    ::close(fd);
}

TEST_CASE("worker: a message shorter than a header is dropped without a reply") {
    Fixture f;
    const std::byte junk[5]{};
    REQUIRE(f.handler.handle(junk).ok());
    CHECK(f.kernel.commands.empty());
    CHECK(f.kernel.completed.empty());
    CHECK(f.handler.counters().malformed == 1);
}

// ---------------------------------------------------------------------------------
// READ

TEST_CASE("worker: aligned READ writes exactly the blob's bytes at the right offsets") {
    Fixture f;
    const std::string blob = pattern(4 * 4096);
    f.backend.blobs["img"] = blob;
    const int fd = f.open_object(5, "img");
    REQUIRE(f.handler.handle(read_msg(21, 5, 4096, 8192).span()).ok());
    REQUIRE(f.kernel.writes.size() == 1);
    CHECK(f.kernel.writes[0].fd == fd);
    CHECK(f.kernel.writes[0].offset == 4096);
    CHECK(f.kernel.writes[0].bytes == blob.substr(4096, 8192));
    CHECK(f.kernel.completed == std::vector<std::pair<int, std::uint32_t>>{{fd, 21}});
    CHECK(f.handler.counters().reads == 1);
    CHECK(f.handler.counters().reads_short == 0);
    CHECK(f.handler.counters().bytes_written == 8192);
    CHECK(f.events == Events{"complete:21"});  // no query: the object is ours
}

TEST_CASE("worker: READ of the tail pads the last block with zeros and writes nothing beyond") {
    Fixture f;
    const std::string blob = pattern(5000);
    f.backend.blobs["img"] = blob;
    f.backend.blobs["other"] = std::string(16384, '\xaa');
    const int fd = f.open_object(5, "img");
    // Fill the handler's copy buffer with non-zero bytes first, so the padding below
    // is really written, not left over from a fresh allocation.
    f.open_object(6, "other", 2);
    REQUIRE(f.handler.handle(read_msg(20, 6, 0, 16384).span()).ok());
    REQUIRE(f.kernel.bytes_written() == 16384);
    f.kernel.writes.clear();
    f.kernel.completed.clear();
    SUBCASE("whole file") {
        REQUIRE(f.handler.handle(read_msg(22, 5, 0, 8192).span()).ok());
        REQUIRE(f.kernel.writes.size() == 1);
        CHECK(f.kernel.writes[0].offset == 0);
        REQUIRE(f.kernel.writes[0].bytes.size() == 8192);
        CHECK(f.kernel.writes[0].bytes.substr(0, 5000) == blob);
        CHECK(f.kernel.writes[0].bytes.substr(5000) == std::string(8192 - 5000, '\0'));
    }
    SUBCASE("last block only") {
        REQUIRE(f.handler.handle(read_msg(22, 5, 4096, 4096).span()).ok());
        REQUIRE(f.kernel.writes.size() == 1);
        CHECK(f.kernel.writes[0].offset == 4096);
        REQUIRE(f.kernel.writes[0].bytes.size() == 4096);
        CHECK(f.kernel.writes[0].bytes.substr(0, 904) == blob.substr(4096));
        CHECK(f.kernel.writes[0].bytes.substr(904) == std::string(4096 - 904, '\0'));
    }
    SUBCASE("a range asking for more than the blob has") {
        REQUIRE(f.handler.handle(read_msg(22, 5, 0, 65536).span()).ok());
        CHECK(f.kernel.bytes_written() == 8192);
        CHECK(f.handler.counters().reads_short == 1);
    }
    CHECK(f.kernel.completed == std::vector<std::pair<int, std::uint32_t>>{{fd, 22}});
}

TEST_CASE("worker: READ past EOF writes nothing and still completes") {
    Fixture f;
    f.backend.blobs["img"] = pattern(5000);
    const int fd = f.open_object(5, "img");
    REQUIRE(f.handler.handle(read_msg(23, 5, 8192, 4096).span()).ok());
    CHECK(f.kernel.writes.empty());
    CHECK(f.kernel.completed == std::vector<std::pair<int, std::uint32_t>>{{fd, 23}});
    CHECK(f.handler.counters().reads_short == 1);
}

TEST_CASE("worker: an unaligned READ is widened to whole blocks") {
    Fixture f;
    const std::string blob = pattern(3 * 4096);
    f.backend.blobs["img"] = blob;
    f.open_object(5, "img");
    REQUIRE(f.handler.handle(read_msg(24, 5, 4100, 10).span()).ok());
    REQUIRE(f.kernel.writes.size() == 1);
    CHECK(f.kernel.writes[0].offset == 4096);
    CHECK(f.kernel.writes[0].bytes == blob.substr(4096, 4096));
}

TEST_CASE("worker: READ spanning chunk boundaries is written in chunks of at most 1 MiB") {
    Fixture f;
    const std::size_t mib = kCopyChunkSize;
    const std::string blob = pattern(3 * mib + 5 * 4096, 3);
    f.backend.blobs["img"] = blob;
    const int fd = f.open_object(5, "img");
    const std::uint64_t offset = mib - 4096;
    const std::uint64_t length = 2 * mib + 8192;
    REQUIRE(f.handler.handle(read_msg(25, 5, offset, length).span()).ok());
    REQUIRE(f.kernel.writes.size() == 3);
    for (const auto& w : f.kernel.writes) {
        CHECK(w.fd == fd);
        CHECK(w.bytes.size() <= mib);
    }
    CHECK(f.kernel.bytes_written() == length);
    check_contiguous(f.kernel.writes, offset, blob.substr(offset, length));
    CHECK(f.handler.counters().reads_short == 0);
    CHECK(f.kernel.completed.size() == 1);
}

TEST_CASE("worker: a failing blob read completes the READ without data") {
    Fixture f;
    f.backend.blobs["img"] = pattern(8192);
    f.backend.fail_reads_at["img"] = 0;
    const int fd = f.open_object(5, "img");
    REQUIRE(f.handler.handle(read_msg(26, 5, 0, 8192).span()).ok());
    CHECK(f.kernel.writes.empty());
    CHECK(f.kernel.completed == std::vector<std::pair<int, std::uint32_t>>{{fd, 26}});
    CHECK(f.handler.counters().reads_short == 1);
}

TEST_CASE("worker: a failure in a later chunk keeps the chunks before it and still completes") {
    Fixture f;
    const std::string blob = pattern(3 * kCopyChunkSize, 1);
    f.backend.blobs["img"] = blob;
    f.backend.fail_reads_at["img"] = 2 * kCopyChunkSize;
    f.open_object(5, "img");
    REQUIRE(f.handler.handle(read_msg(27, 5, 0, 3 * kCopyChunkSize).span()).ok());
    CHECK(f.kernel.bytes_written() == 2 * kCopyChunkSize);
    check_contiguous(f.kernel.writes, 0, blob.substr(0, 2 * kCopyChunkSize));
    CHECK(f.kernel.completed.size() == 1);
    CHECK(f.handler.counters().reads_short == 1);
}

TEST_CASE("worker: a failing cache write still completes the READ") {
    Fixture f;
    f.backend.blobs["img"] = pattern(8192);
    f.kernel.fail_writes = true;
    f.open_object(5, "img");
    REQUIRE(f.handler.handle(read_msg(28, 5, 0, 8192).span()).ok());
    CHECK(f.kernel.writes.size() == 1);
    CHECK(f.kernel.completed.size() == 1);
    CHECK(f.handler.counters().reads_short == 1);
    CHECK(f.handler.counters().bytes_written == 0);
}

TEST_CASE("worker: a READ's write the kernel refuses for want of room waits for the cull, then succeeds") {
    Fixture f;
    const std::string blob = pattern(8192, 3);
    f.backend.blobs["img"] = blob;
    f.open_object(5, "img");
    // Four tries more fail; the fifth, 500 ms on, finds room.
    f.kernel.writes_without_room = 5;
    REQUIRE(f.handler.handle(read_msg(28, 5, 0, 4096).span()).ok());
    CHECK(f.kernel.waited == 5 * kCacheRoomRetry);
    REQUIRE(f.kernel.writes.size() == 6);
    CHECK(f.kernel.writes.back().bytes == blob.substr(0, 4096));
    CHECK(f.kernel.completed.size() == 1);
    CHECK(f.handler.counters().reads_short == 0);
    CHECK(f.handler.counters().room_waits == 1);
}

TEST_CASE("worker: a cache that stays full fails a READ after kCacheRoomWait, then READs at once for "
          "kCacheFullHold") {
    Fixture f;
    const std::string blob = pattern(16384, 4);
    f.backend.blobs["img"] = blob;
    f.open_object(5, "img");
    f.kernel.writes_without_room = 1000;
    REQUIRE(f.handler.handle(read_msg(28, 5, 0, 4096).span()).ok());
    CHECK(f.kernel.waited == kCacheRoomWait);
    CHECK(f.kernel.completed.size() == 1);
    CHECK(f.handler.counters().reads_short == 1);
    // Held full: one try, no wait.
    const auto writes = f.kernel.writes.size();
    REQUIRE(f.handler.handle(read_msg(29, 5, 4096, 4096).span()).ok());
    CHECK(f.kernel.waited == kCacheRoomWait);
    CHECK(f.kernel.writes.size() == writes + 1);
    CHECK(f.handler.counters().reads_short == 2);
    // Room again: the write succeeds at its first try.
    f.kernel.writes_without_room = 0;
    REQUIRE(f.handler.handle(read_msg(30, 5, 8192, 4096).span()).ok());
    CHECK(f.kernel.writes.back().bytes == blob.substr(8192, 4096));
    CHECK(f.handler.counters().reads_short == 2);
    // Full again within kCacheFullHold of the wait in vain: at once.
    f.kernel.writes_without_room = 1;
    REQUIRE(f.handler.handle(read_msg(31, 5, 12288, 4096).span()).ok());
    CHECK(f.kernel.waited == kCacheRoomWait);
    CHECK(f.handler.counters().reads_short == 3);
    // After it, a READ waits again.
    f.kernel.wait(kCacheFullHold);
    f.kernel.writes_without_room = 1;
    REQUIRE(f.handler.handle(read_msg(32, 5, 12288, 4096).span()).ok());
    CHECK(f.kernel.waited == kCacheRoomWait + kCacheFullHold + kCacheRoomRetry);
    CHECK(f.kernel.writes.back().bytes == blob.substr(12288, 4096));
    CHECK(f.handler.counters().reads_short == 3);
    CHECK(f.handler.counters().room_waits == 2);
}

TEST_CASE("worker: a READ waits for room kCacheRoomWait in all, however many chunks it writes") {
    Fixture f;
    const std::string blob = pattern(2 * kCopyChunkSize, 6);
    f.backend.blobs["img"] = blob;
    f.open_object(5, "img");
    // The first chunk finds room after 1.5 s; the second never does.
    f.kernel.writes_without_room = 15;
    f.kernel.no_room_from = kCopyChunkSize;
    REQUIRE(f.handler.handle(read_msg(28, 5, 0, 2 * kCopyChunkSize).span()).ok());
    CHECK(f.kernel.waited == kCacheRoomWait);
    CHECK(f.handler.counters().reads_short == 1);
    CHECK(f.handler.counters().room_waits == 2);
    CHECK(f.kernel.completed.size() == 1);
}

TEST_CASE("worker: ENOBUFS from an object closed under the worker is not waited for") {
    Fixture f;
    f.backend.blobs["img"] = pattern(8192, 5);
    f.open_object(5, "img");
    f.kernel.writes_without_room = 1000;
    f.kernel.fail_seeks = true;  // ENOBUFS: the object's cache file is gone
    REQUIRE(f.handler.handle(read_msg(28, 5, 0, 4096).span()).ok());
    CHECK(f.kernel.waited == std::chrono::milliseconds(0));
    CHECK(f.handler.counters().room_waits == 0);
    CHECK(f.kernel.completed.size() == 1);
}

TEST_CASE("worker: READ for an object another worker opened asks the supervisor once") {
    Fixture f;
    const std::string blob = pattern(8192, 9);
    f.backend.blobs["shared"] = blob;
    f.link.known[77] = wire::ObjectDescription{77, 8192, "erofs,vol", "shared"};
    REQUIRE(f.handler.handle(read_msg(31, 77, 0, 4096).span()).ok());
    REQUIRE(f.link.handed_out_fds.size() == 1);
    const int fd = f.link.handed_out_fds[0];
    REQUIRE(f.kernel.writes.size() == 1);
    CHECK(f.kernel.writes[0].fd == fd);
    CHECK(f.kernel.writes[0].bytes == blob.substr(0, 4096));
    CHECK(f.kernel.completed == std::vector<std::pair<int, std::uint32_t>>{{fd, 31}});
    CHECK(f.handler.object_count() == 1);
    // With the size the supervisor gave: a remote store is not asked for it again.
    CHECK(f.backend.with_size == std::vector<std::pair<std::string, std::uint64_t>>{{"shared", 8192}});
    // The second READ uses the copy it now holds.
    REQUIRE(f.handler.handle(read_msg(32, 77, 4096, 4096).span()).ok());
    CHECK(f.events == Events{"query:77", "complete:31", "complete:32"});
    CHECK(f.kernel.writes.size() == 2);
}

TEST_CASE("worker: READ for an object the supervisor does not know neither writes nor completes") {
    Fixture f;
    REQUIRE(f.handler.handle(read_msg(33, 88, 0, 4096).span()).ok());
    CHECK(f.events == Events{"query:88"});
    CHECK(f.kernel.writes.empty());
    CHECK(f.kernel.completed.empty());
    CHECK(f.handler.object_count() == 0);
}

TEST_CASE("worker: READ for a shared object whose blob this worker cannot open completes without data") {
    Fixture f;
    f.link.known[77] = wire::ObjectDescription{77, 8192, "erofs,vol", "gone"};
    REQUIRE(f.handler.handle(read_msg(34, 77, 0, 4096).span()).ok());
    CHECK(f.kernel.writes.empty());
    REQUIRE(f.kernel.completed.size() == 1);
    CHECK(f.kernel.completed[0].first == f.link.handed_out_fds.at(0));
    CHECK(f.handler.counters().reads_short == 1);
}

TEST_CASE("worker: a blob that failed to open is opened again at the next READ, and then served") {
    Fixture f;
    const std::string blob = pattern(8192, 4);
    f.backend.blobs["flaky"] = blob;
    f.backend.errors["flaky"] = EMFILE;
    f.link.known[77] = wire::ObjectDescription{77, 8192, "erofs,vol", "flaky"};
    REQUIRE(f.handler.handle(read_msg(36, 77, 0, 4096).span()).ok());
    CHECK(f.kernel.writes.empty());
    CHECK(f.handler.counters().reads_short == 1);
    f.backend.errors.clear();
    REQUIRE(f.handler.handle(read_msg(37, 77, 4096, 4096).span()).ok());
    REQUIRE(f.kernel.writes.size() == 1);
    CHECK(f.kernel.writes[0].bytes == blob.substr(4096, 4096));
    CHECK(f.handler.counters().reads_short == 1);
    // Asked with the size the supervisor gave both times; the supervisor only once.
    CHECK(f.backend.with_size == std::vector<std::pair<std::string, std::uint64_t>>{{"flaky", 8192}, {"flaky", 8192}});
    CHECK(f.events == Events{"query:77", "complete:36", "complete:37"});
}

TEST_CASE("worker: a broken supervisor link during a READ query is returned") {
    Fixture f;
    f.link.broken = true;
    auto r = f.handler.handle(read_msg(35, 99, 0, 4096).span());
    REQUIRE_FALSE(r.ok());
    CHECK(f.kernel.completed.empty());
}

TEST_CASE("worker: malformed READ for a known object completes it at once") {
    Fixture f;
    f.backend.blobs["img"] = pattern(4096);
    const int fd = f.open_object(5, "img");
    REQUIRE(f.handler.handle(read_msg(36, 5, 0, 0).span()).ok());  // zero length
    CHECK(f.kernel.writes.empty());
    CHECK(f.kernel.completed == std::vector<std::pair<int, std::uint32_t>>{{fd, 36}});
    CHECK(f.handler.counters().malformed == 1);
}

// ---------------------------------------------------------------------------------
// CLOSE and forget

TEST_CASE("worker: CLOSE erases the object, closes its fd and reports object_closed") {
    Fixture f;
    f.backend.blobs["img"] = pattern(4096);
    const int fd = f.open_object(5, "img");
    REQUIRE(f.handler.object_count() == 1);
    REQUIRE(f.handler.handle(close_msg(40, 5).span()).ok());
    CHECK(f.handler.object_count() == 0);
    CHECK(fd_is_closed(fd));
    CHECK(f.link.closed == std::vector<std::uint32_t>{5});
    CHECK(f.handler.counters().closes == 1);
    // A later READ has to ask the supervisor again.
    REQUIRE(f.handler.handle(read_msg(41, 5, 0, 4096).span()).ok());
    CHECK(f.events == Events{"closed:5", "query:5"});
}

TEST_CASE("worker: CLOSE of an object this worker does not hold is still reported") {
    Fixture f;
    REQUIRE(f.handler.handle(close_msg(42, 6).span()).ok());
    CHECK(f.link.closed == std::vector<std::uint32_t>{6});
}

TEST_CASE("worker: a broken link on CLOSE is returned") {
    Fixture f;
    f.link.broken = true;
    CHECK_FALSE(f.handler.handle(close_msg(43, 6).span()).ok());
}

TEST_CASE("worker: malformed CLOSE still closes the object it names, here and at the supervisor") {
    Fixture f;
    f.backend.blobs["img"] = pattern(4096);
    const int fd = f.open_object(5, "img");
    Bytes with_payload;
    with_payload.u32(44).u32(1).u32(0).u32(5).u32(0).fix_len();  // 4 bytes a CLOSE does not carry
    REQUIRE(f.handler.handle(with_payload.span()).ok());
    CHECK(f.handler.counters().malformed == 1);
    CHECK(f.handler.object_count() == 0);
    CHECK(fd_is_closed(fd));
    CHECK(f.link.closed == std::vector<std::uint32_t>{5});
}

TEST_CASE("worker: forget() drops the object and closes its fd, without telling the supervisor") {
    Fixture f;
    f.backend.blobs["img"] = pattern(4096);
    const int fd = f.open_object(5, "img");
    f.handler.forget(5);
    CHECK(f.handler.object_count() == 0);
    CHECK(fd_is_closed(fd));
    CHECK(f.link.closed.empty());
    f.handler.forget(12345);  // unknown: nothing happens
    CHECK(f.handler.object_count() == 0);
}

// ---------------------------------------------------------------------------------
// Copies handed over ahead of need (ObjectShare: this worker is a spare)

namespace {
SharedObject shared_copy(std::uint32_t id, const std::string& blob, int* raw_out = nullptr) {
    SharedObject s;
    s.description = wire::ObjectDescription{id, 8192, "erofs,vol", blob};
    s.anon_fd = unique_fd(make_anon_fd());
    if (raw_out != nullptr) *raw_out = s.anon_fd.get();
    return s;
}

TEST_CASE("worker: malformed READ for an object held as an unused copy completes it through that copy") {
    Fixture f;
    int fd = -1;
    f.handler.take_shared(shared_copy(78, "held", &fd));
    REQUIRE(f.handler.handle(read_msg(38, 78, 0, 0).span()).ok());  // zero length
    CHECK(f.kernel.completed == std::vector<std::pair<int, std::uint32_t>>{{fd, 38}});
    CHECK(f.events == Events{"complete:38"});  // no ObjectQuery
    CHECK(f.handler.counters().malformed == 1);
}

// A paused spare whose store opens a local blob when its copy arrives, as a local
// directory does (BlobBackend::open_ahead), holding the 8 KiB blob "local".
struct SpareFixture : Fixture {
    explicit SpareFixture(unsigned seed) : blob(pattern(8192, seed)) {
        backend.opens_ahead = true;
        backend.blobs["local"] = blob;
    }
    std::string blob;
};
}  // namespace

TEST_CASE("worker: a READ for an object handed over ahead of need asks the supervisor nothing") {
    Fixture f;
    const std::string blob = pattern(8192, 5);
    f.backend.blobs["shared"] = blob;
    int fd = -1;
    f.handler.take_shared(shared_copy(77, "shared", &fd));
    CHECK(f.handler.shared_count() == 1);
    CHECK(f.handler.object_count() == 0);
    // Its blob is opened when a READ needs it, not before (remote: a HEAD request).
    CHECK(f.backend.asked.empty());
    CHECK(fd_is_open(fd));

    REQUIRE(f.handler.handle(read_msg(50, 77, 0, 4096).span()).ok());
    CHECK(f.events == Events{"complete:50"});  // no "query:77"
    CHECK(f.backend.asked == std::vector<std::string>{"shared"});
    CHECK(f.backend.with_size.size() == 1);
    REQUIRE(f.kernel.writes.size() == 1);
    CHECK(f.kernel.writes[0].fd == fd);
    CHECK(f.kernel.writes[0].bytes == blob.substr(0, 4096));
    CHECK(f.kernel.completed == std::vector<std::pair<int, std::uint32_t>>{{fd, 50}});
    CHECK(f.handler.shared_count() == 0);
    CHECK(f.handler.object_count() == 1);
    CHECK(f.handler.counters().shares_kept == 1);
    CHECK(f.handler.counters().shares_used == 1);
    CHECK(f.handler.counters().queries == 0);
    // And the next READ uses the same copy.
    REQUIRE(f.handler.handle(read_msg(51, 77, 4096, 4096).span()).ok());
    CHECK(f.kernel.completed.back() == std::pair<int, std::uint32_t>{fd, 51});
    CHECK(f.link.handed_out_fds.empty());
}

TEST_CASE("worker: a spare opens a local blob when the copy arrives, and the READ after a failover finds it open") {
    SpareFixture f(6);
    const std::string& blob = f.blob;
    int fd = -1;
    f.handler.take_shared(shared_copy(80, "local", &fd));
    CHECK(f.backend.ahead == std::vector<std::pair<std::string, std::uint64_t>>{{"local", 8192}});
    CHECK(f.handler.counters().shares_opened_ahead == 1);
    // Gone from the directory since: the blob opened ahead still serves the READ.
    // (Block 0 is the rehearsal's, below.)
    f.backend.blobs.erase("local");
    REQUIRE(f.handler.handle(read_msg(58, 80, 4096, 4096).span()).ok());
    CHECK(f.events == Events{"complete:58"});
    CHECK(f.backend.asked.empty());
    REQUIRE(f.kernel.writes.size() == 2);
    CHECK(f.kernel.writes[1].fd == fd);
    CHECK(f.kernel.writes[1].bytes == blob.substr(4096, 4096));
    CHECK(f.handler.counters().reads_short == 0);

    // A blob not there when the copy came is opened by the READ, which reports it.
    f.handler.take_shared(shared_copy(81, "later", &fd));
    CHECK(f.handler.counters().shares_opened_ahead == 1);
    f.backend.blobs["later"] = blob;
    REQUIRE(f.handler.handle(read_msg(59, 81, 0, 4096).span()).ok());
    CHECK(f.backend.asked == std::vector<std::string>{"later"});
    CHECK(f.kernel.writes.back().bytes == blob.substr(0, 4096));

    // A worker already serving (resumed while still being handed copies) opens
    // nothing on arrival: its READs in hand come first.
    f.handler.set_paused(false);
    const auto written = f.kernel.writes.size();
    f.handler.take_shared(shared_copy(82, "later"));
    CHECK(f.backend.ahead.size() == 2);
    CHECK(f.kernel.writes.size() == written);
    CHECK(f.handler.counters().shares_opened_ahead == 1);
    REQUIRE(f.handler.handle(read_msg(60, 82, 0, 4096).span()).ok());
    CHECK(f.backend.asked == std::vector<std::string>{"later", "later"});
}

TEST_CASE("worker: a spare rehearses the READ path once: blob bytes into the first hole, nothing completed or counted") {
    SpareFixture f(8);
    const std::string& blob = f.blob;
    int fd = -1;
    auto copy = shared_copy(90, "local", &fd);
    f.kernel.cache_files[fd].write(0, 4096);  // what the worker that died wrote
    f.handler.take_shared(std::move(copy));
    REQUIRE(f.kernel.writes.size() == 1);
    CHECK(f.kernel.writes[0].fd == fd);
    CHECK(f.kernel.writes[0].offset == 4096);
    CHECK(f.kernel.writes[0].bytes == blob.substr(4096, 4096));
    CHECK(f.kernel.completed.empty());
    CHECK(f.events.empty());  // no query, no command
    CHECK(f.handler.counters().reads == 0);
    CHECK(f.handler.counters().bytes_written == 0);
    CHECK(f.handler.counters().shares_used == 0);
    CHECK(f.handler.counters().shares_opened_ahead == 1);

    // Once: the next copy is only kept, and an object whose cache file is whole
    // would get no write at all.
    f.handler.take_shared(shared_copy(91, "local"));
    CHECK(f.kernel.writes.size() == 1);
    CHECK(f.handler.shared_count() == 1);

    // The READ after a failover finds the object at hand, and both blocks written.
    REQUIRE(f.handler.handle(read_msg(61, 90, 0, 8192).span()).ok());
    CHECK(f.events == Events{"complete:61"});
    CHECK(f.kernel.writes.size() == 1);
    CHECK(f.handler.counters().reads_already_written == 1);
}

TEST_CASE("worker: a spare's rehearsal on a whole cache file writes nothing") {
    SpareFixture f(9);
    int fd = -1;
    auto copy = shared_copy(92, "local", &fd);
    f.kernel.cache_files[fd].write(0, 8192);
    f.handler.take_shared(std::move(copy));
    CHECK(f.handler.object_count() == 1);  // rehearsed on, as a READ would leave it
    CHECK(f.kernel.writes.empty());
    CHECK(f.kernel.completed.empty());
    REQUIRE(f.handler.handle(read_msg(62, 92, 4096, 4096).span()).ok());
    CHECK(f.events == Events{"complete:62"});
    CHECK(f.kernel.writes.empty());
}

TEST_CASE("worker: without a copy handed over, a READ still asks the supervisor (the fallback)") {
    Fixture f;
    f.backend.blobs["shared"] = pattern(8192, 5);
    f.link.known[78] = wire::ObjectDescription{78, 8192, "erofs,vol", "shared"};
    f.handler.take_shared(shared_copy(77, "shared"));
    REQUIRE(f.handler.handle(read_msg(52, 78, 0, 4096).span()).ok());
    CHECK(f.events == Events{"query:78", "complete:52"});
    CHECK(f.handler.counters().queries == 1);
    CHECK(f.handler.counters().shares_used == 0);
    CHECK(f.handler.shared_count() == 1);  // 77 still waits for a READ
}

TEST_CASE("worker: a copy of an object it holds already is closed at once, never kept twice") {
    Fixture f;
    f.backend.blobs["img"] = pattern(8192);
    const int opened = f.open_object(5, "img");
    int second = -1;
    f.handler.take_shared(shared_copy(5, "img", &second));
    CHECK(fd_is_closed(second));
    CHECK(f.handler.shared_count() == 0);
    CHECK(f.handler.object_count() == 1);
    CHECK(fd_is_open(opened));
    // Handed over twice: the first copy kept, the second closed.
    int a = -1, b = -1;
    f.handler.take_shared(shared_copy(6, "img", &a));
    f.handler.take_shared(shared_copy(6, "img", &b));
    CHECK(fd_is_open(a));
    CHECK(fd_is_closed(b));
    CHECK(f.handler.shared_count() == 1);
    CHECK(f.handler.counters().shares_kept == 1);
    CHECK(f.handler.counters().shares_closed == 2);
    // The READ of 5 uses the copy from its OPEN.
    REQUIRE(f.handler.handle(read_msg(53, 5, 0, 4096).span()).ok());
    CHECK(f.kernel.completed.back() == std::pair<int, std::uint32_t>{opened, 53});
}

TEST_CASE("worker: a copy that comes while it asks for that object is closed, the answer used") {
    Fixture f;
    f.backend.blobs["shared"] = pattern(8192, 3);
    f.link.known[79] = wire::ObjectDescription{79, 8192, "erofs,vol", "shared"};
    int late = -1;
    f.link.while_asked = [&] { f.handler.take_shared(shared_copy(79, "shared", &late)); };
    REQUIRE(f.handler.handle(read_msg(54, 79, 0, 4096).span()).ok());
    REQUIRE(f.link.handed_out_fds.size() == 1);
    const int answered = f.link.handed_out_fds[0];
    CHECK(f.kernel.completed == std::vector<std::pair<int, std::uint32_t>>{{answered, 54}});
    CHECK(fd_is_closed(late));
    CHECK(fd_is_open(answered));
    CHECK(f.handler.shared_count() == 0);
    CHECK(f.handler.object_count() == 1);
}

TEST_CASE("worker: forget() and CLOSE close a copy held unused") {
    Fixture f;
    int a = -1, b = -1;
    f.handler.take_shared(shared_copy(9, "img", &a));
    f.handler.take_shared(shared_copy(10, "img", &b));
    REQUIRE(f.handler.shared_count() == 2);
    f.handler.forget(9);
    CHECK(fd_is_closed(a));
    CHECK(f.handler.shared_count() == 1);
    CHECK(f.link.closed.empty());
    REQUIRE(f.handler.handle(close_msg(55, 10).span()).ok());
    CHECK(fd_is_closed(b));
    CHECK(f.handler.shared_count() == 0);
    CHECK(f.link.closed == std::vector<std::uint32_t>{10});
    // A READ for either now asks (and finds nothing: the supervisor forgot them).
    REQUIRE(f.handler.handle(read_msg(56, 9, 0, 4096).span()).ok());
    CHECK(f.events == Events{"closed:10", "query:9"});
    CHECK(f.kernel.completed.empty());
}

TEST_CASE("worker: forget() and CLOSE close a blob opened ahead with its copy") {
    SpareFixture f(7);
    int a = -1, b = -1;
    f.handler.take_shared(shared_copy(11, "local", &a));
    f.handler.take_shared(shared_copy(12, "local", &b));
    REQUIRE(f.backend.open_ahead_count() == 2);
    f.handler.forget(11);
    CHECK(fd_is_closed(a));
    CHECK(f.backend.open_ahead_count() == 1);
    REQUIRE(f.handler.handle(close_msg(57, 12).span()).ok());
    CHECK(fd_is_closed(b));
    CHECK(f.backend.open_ahead_count() == 0);
    CHECK(f.handler.shared_count() == 0);
}

TEST_CASE("worker: at most kMaxSharedObjects copies are kept unused; the next is closed") {
    // Each copy is an fd: room for them and the test's own.
    if (!cfs::testing::room_for_fds(wire::kMaxSharedObjects + 256)) return;
    Fixture f;
    for (std::uint32_t id = 1; id <= wire::kMaxSharedObjects; ++id) f.handler.take_shared(shared_copy(id, "img"));
    CHECK(f.handler.shared_count() == wire::kMaxSharedObjects);
    int over = -1;
    f.handler.take_shared(shared_copy(5000, "img", &over));
    CHECK(fd_is_closed(over));
    CHECK(f.handler.shared_count() == wire::kMaxSharedObjects);
    CHECK(f.handler.counters().shares_closed == 1);
    // Using one makes room for one more.
    f.backend.blobs["img"] = pattern(8192);
    REQUIRE(f.handler.handle(read_msg(57, 1, 0, 4096).span()).ok());
    CHECK(f.handler.shared_count() == wire::kMaxSharedObjects - 1);
    int fits = -1;
    f.handler.take_shared(shared_copy(5001, "img", &fits));
    CHECK(fd_is_open(fits));
    CHECK(f.handler.shared_count() == wire::kMaxSharedObjects);
}

// ---------------------------------------------------------------------------------
// Read-ahead (worker/read_ahead.h), through the handler.

namespace {

struct ReadAheadFixture : Fixture {
    RequestHandler ahead_handler{kernel, backend, link, 256 * 1024};

    int open_object(std::uint32_t object_id, const std::string& name) {
        const int fd = anon_fd();
        REQUIRE(ahead_handler.handle(open_msg(1, object_id, name, fd).span()).ok());
        kernel.commands.clear();
        events.clear();
        return fd;
    }
};

}  // namespace

// Runs the read-ahead the way the worker's event loop does: a chunk at a time, while
// no request waits.
void drain_ahead(RequestHandler& handler) {
    for (int i = 0; i < 10000 && handler.has_ahead_work(); ++i) handler.write_ahead_step();
    CHECK_FALSE(handler.has_ahead_work());
}

TEST_CASE("worker read-ahead: the READ is completed after its own range and before the read-ahead") {
    ReadAheadFixture f;
    const std::string blob = pattern(1 << 20, 5);
    f.backend.blobs["img"] = blob;
    const int fd = f.open_object(5, "img");
    REQUIRE(f.ahead_handler.handle(read_msg(30, 5, 0, 16384).span()).ok());
    // Only its own range is written when the READ is completed.
    REQUIRE(f.kernel.writes.size() == 1);
    CHECK(f.kernel.writes[0].offset == 0);
    CHECK(f.kernel.writes[0].bytes == blob.substr(0, 16384));
    CHECK(f.kernel.completed == std::vector<std::pair<int, std::uint32_t>>{{fd, 30}});
    CHECK(f.ahead_handler.has_ahead_work());
    drain_ahead(f.ahead_handler);
    // Then the initial window after it, same fd, right bytes.
    check_contiguous(f.kernel.writes, 0, blob.substr(0, 16384 + ReadAheadPolicy::kInitialWindow));
    for (const auto& w : f.kernel.writes) CHECK(w.fd == fd);
    CHECK(f.ahead_handler.counters().bytes_ahead == ReadAheadPolicy::kInitialWindow);
    CHECK(f.ahead_handler.counters().bytes_written == 16384 + ReadAheadPolicy::kInitialWindow);
    // Nothing twice.
    f.ahead_handler.write_ahead_step();
    CHECK(f.kernel.bytes_written() == 16384 + ReadAheadPolicy::kInitialWindow);
}

TEST_CASE("worker read-ahead: the next chunk is asked of the blob before the chunk in hand is written") {
    Fixture f;
    constexpr std::uint64_t C = kCopyChunkSize;
    constexpr std::uint64_t K128 = 128 * 1024;
    RequestHandler handler{f.kernel, f.backend, f.link, 4 * C};
    const std::string blob = pattern(4 * C, 6);
    f.backend.blobs["img"] = blob;
    const int fd = f.anon_fd();
    REQUIRE(handler.handle(open_msg(1, 6, "img", fd).span()).ok());
    f.backend.trace.clear();
    // A READ of 2.5 chunks: three chunks, each of the last two hinted before it is
    // read (and so before the chunk in hand is written); then its read-ahead (128 KiB:
    // no data was behind it), planned with its first chunk hinted at once.
    REQUIRE(handler.handle(read_msg(40, 6, 0, 2 * C + C / 2).span()).ok());
    const auto trace = [&f] { return fmt::format("{}", fmt::join(f.backend.trace, ", ")); };
    CHECK(trace() == fmt::format("read 0+{0}, need {0}+{0}, read {0}+{0}, need {1}+{2}, read {1}+{2}, need {3}+{4}", C,
                                 2 * C, C / 2, 2 * C + C / 2, K128));
    f.backend.trace.clear();
    drain_ahead(handler);
    CHECK(trace() == fmt::format("read {}+{}", 2 * C + C / 2, K128));
    // The next READ follows on: its read-ahead runs to the blob's end, a chunk and a
    // part, the second hinted before the first is written.
    f.backend.trace.clear();
    const std::uint64_t next = 2 * C + C / 2 + K128;
    REQUIRE(handler.handle(read_msg(41, 6, next, K128).span()).ok());
    drain_ahead(handler);
    CHECK(trace() == fmt::format("read {0}+{1}, need {2}+{3}, read {2}+{3}, need {4}+{5}, read {4}+{5}", next, K128,
                                 next + K128, C, next + K128 + C, 4 * C - (next + K128 + C)));
    check_contiguous(f.kernel.writes, 0, blob);
}

TEST_CASE("worker read-ahead: a READ of a range the cache file holds is only completed") {
    ReadAheadFixture f;
    const std::string blob = pattern(1 << 20, 6);
    f.backend.blobs["img"] = blob;
    const int fd = f.open_object(5, "img");
    REQUIRE(f.ahead_handler.handle(read_msg(31, 5, 0, 4096).span()).ok());
    drain_ahead(f.ahead_handler);
    const auto writes = f.kernel.writes.size();
    REQUIRE(f.ahead_handler.handle(read_msg(32, 5, 4096, 65536).span()).ok());
    CHECK_FALSE(f.ahead_handler.has_ahead_work());
    CHECK(f.kernel.writes.size() == writes);
    CHECK(f.kernel.completed == std::vector<std::pair<int, std::uint32_t>>{{fd, 31}, {fd, 32}});
    CHECK(f.ahead_handler.counters().reads_already_written == 1);
    CHECK(f.ahead_handler.counters().reads_short == 0);
}

TEST_CASE("worker read-ahead: what another worker wrote counts, and is not written again") {
    ReadAheadFixture f;
    const std::string blob = pattern(4 << 20, 9);
    f.backend.blobs["img"] = blob;
    const int fd = f.open_object(5, "img");
    // Another worker answered the READs of the first MiB (the kernel's view of the
    // cache file is shared; this worker's memory is not).
    f.kernel.cache_files[fd].write(0, 1 << 20);
    REQUIRE(f.ahead_handler.handle(read_msg(33, 5, 1 << 20, 65536).span()).ok());
    drain_ahead(f.ahead_handler);
    // Its own range, then the largest window: a reader with a MiB behind it.
    check_contiguous(f.kernel.writes, 1 << 20, blob.substr(1 << 20, 65536 + 256 * 1024));
}

TEST_CASE("worker read-ahead: a piece another worker wrote while its blob bytes were read is not written again") {
    ReadAheadFixture f;
    const std::string blob = pattern(1 << 20, 11);
    f.backend.blobs["img"] = blob;
    const int fd = f.open_object(5, "img");
    constexpr std::uint64_t ahead_begin = 16384;
    constexpr std::uint64_t window = ReadAheadPolicy::kInitialWindow;
    SUBCASE("written whole meanwhile: left alone") {
        f.backend.on_read = [&](std::uint64_t offset) {
            if (offset == ahead_begin) f.kernel.cache_files[fd].write(ahead_begin, window);
        };
        REQUIRE(f.ahead_handler.handle(read_msg(34, 5, 0, 16384).span()).ok());
        drain_ahead(f.ahead_handler);
        REQUIRE(f.kernel.writes.size() == 1);  // the READ's own range only
        CHECK(f.kernel.writes[0].bytes == blob.substr(0, 16384));
        CHECK(f.ahead_handler.counters().bytes_ahead == 0);
        CHECK(f.ahead_handler.counters().ahead_pieces_written_meanwhile == 1);
    }
    SUBCASE("written in part meanwhile: written, so that no hole is left") {
        f.backend.on_read = [&](std::uint64_t offset) {
            if (offset == ahead_begin) f.kernel.cache_files[fd].write(ahead_begin, 4096);
        };
        REQUIRE(f.ahead_handler.handle(read_msg(34, 5, 0, 16384).span()).ok());
        drain_ahead(f.ahead_handler);
        check_contiguous(f.kernel.writes, 0, blob.substr(0, 16384 + window));
        CHECK(f.ahead_handler.counters().ahead_pieces_written_meanwhile == 0);
    }
}

TEST_CASE("worker read-ahead: random READs write only their own ranges") {
    ReadAheadFixture f;
    const std::string blob = pattern(4 << 20, 10);
    f.backend.blobs["img"] = blob;
    f.open_object(5, "img");
    std::uint32_t msg = 60;
    for (std::uint64_t at : {3u << 20, 1u << 20, 2u << 20, 5u << 16}) {
        REQUIRE(f.ahead_handler.handle(read_msg(msg++, 5, at, 4096).span()).ok());
        CHECK_FALSE(f.ahead_handler.has_ahead_work());
    }
    CHECK(f.kernel.bytes_written() == 4 * 4096);
    CHECK(f.ahead_handler.counters().bytes_ahead == 0);
}

TEST_CASE("worker read-ahead: a READ that comes while its range is being written ahead is answered first") {
    ReadAheadFixture f;
    const std::string blob = pattern(4 << 20, 11);
    f.backend.blobs["img"] = blob;
    const int fd = f.open_object(5, "img");
    f.kernel.cache_files[fd].write(0, 1 << 20);
    REQUIRE(f.ahead_handler.handle(read_msg(34, 5, 1 << 20, 4096).span()).ok());
    REQUIRE(f.ahead_handler.has_ahead_work());
    // The reader caught up before any of the read-ahead was written: its READ writes
    // its range at once; the read-ahead then skips it.
    REQUIRE(f.ahead_handler.handle(read_msg(35, 5, (1 << 20) + 4096, 8192).span()).ok());
    CHECK(f.kernel.completed.back() == std::pair<int, std::uint32_t>{fd, 35});
    drain_ahead(f.ahead_handler);
    std::uint64_t written = 0;
    for (const auto& w : f.kernel.writes) written += w.bytes.size();
    CHECK(written == f.kernel.cache_files[fd].hole_from(1 << 20) - (1 << 20));
    check_contiguous(f.kernel.writes, 1 << 20, blob.substr(1 << 20, written));
}

TEST_CASE("worker read-ahead: sequential READs grow the window to the maximum, all bytes right") {
    ReadAheadFixture f;
    const std::string blob = pattern((2 << 20) + 5000, 7);
    f.backend.blobs["img"] = blob;
    const int fd = f.open_object(5, "img");
    // A reader that reads on: each READ starts at the first hole, as the kernel's do.
    std::uint64_t pos = 0;
    std::uint32_t msg = 40;
    int reads = 0;
    while (pos < blob.size()) {
        const std::uint64_t length = std::min<std::uint64_t>(16384, blob.size() - pos);
        REQUIRE(f.ahead_handler.handle(read_msg(msg++, 5, pos, length).span()).ok());
        drain_ahead(f.ahead_handler);
        ++reads;
        pos = f.kernel.cache_files[fd].hole_from(0);
    }
    // 2 MiB with a window of 256 KiB at most: far fewer READs than 16 KiB ones.
    CHECK(reads < 14);
    const std::size_t padded = (blob.size() + 4095) / 4096 * 4096;
    std::string expected = blob + std::string(padded - blob.size(), '\0');
    check_contiguous(f.kernel.writes, 0, expected);
    CHECK(f.ahead_handler.counters().reads_short == 0);
}

TEST_CASE("worker read-ahead: a blob shorter than at open ends the read-ahead without failing any READ") {
    ReadAheadFixture f;
    f.backend.blobs["img"] = pattern(1 << 20);
    f.backend.fail_reads_at["img"] = 64 * 1024;
    f.open_object(5, "img");
    REQUIRE(f.ahead_handler.handle(read_msg(50, 5, 0, 16384).span()).ok());
    drain_ahead(f.ahead_handler);
    CHECK(f.kernel.bytes_written() == 16384);
    CHECK(f.ahead_handler.counters().reads_short == 0);
    CHECK(f.kernel.completed.size() == 1);
}

TEST_CASE("worker read-ahead: an object closed before its read-ahead is not written to") {
    ReadAheadFixture f;
    f.backend.blobs["img"] = pattern(1 << 20);
    f.open_object(5, "img");
    REQUIRE(f.ahead_handler.handle(read_msg(51, 5, 0, 4096).span()).ok());
    REQUIRE(f.ahead_handler.has_ahead_work());
    f.ahead_handler.forget(5);
    CHECK_FALSE(f.ahead_handler.has_ahead_work());
    f.ahead_handler.write_ahead_step();
    CHECK(f.kernel.bytes_written() == 4096);
}

TEST_CASE("worker read-ahead: a cache file that cannot be asked is written, never skipped") {
    ReadAheadFixture f;
    const std::string blob = pattern(1 << 20, 12);
    f.backend.blobs["img"] = blob;
    const int fd = f.open_object(5, "img");
    f.kernel.cache_files[fd].write(0, 65536);
    f.kernel.fail_seeks = true;
    REQUIRE(f.ahead_handler.handle(read_msg(52, 5, 0, 65536).span()).ok());
    check_contiguous(f.kernel.writes, 0, blob.substr(0, 65536));
    CHECK(f.ahead_handler.counters().reads_short == 0);
}

// ---------------------------------------------------------------------------------
// Chunk digests (worker/chunk_verified_source.h) on both write paths: the READ's own
// range and read-ahead. Digests from coreutils' sha256sum of 4096 'a's, 4096 'b's and
// 100 'c's.

TEST_CASE("worker chunks: neither a READ nor read-ahead writes a byte of a chunk that fails its digest") {
    ReadAheadFixture f;
    const std::string good = std::string(4096, 'a') + std::string(4096, 'b') + std::string(100, 'c');
    std::string served = good;
    served[4096 + 1000] = 'X';
    f.backend.blobs["img"] = served;
    FakeBackend dir;
    dir.blobs["img.chunks"] =
        "cfs-chunks 1\nchunk_size 4096\nsize 8292\n"
        "c93eee2d0db02f10acc7460d9576e122dcf8cd53c4bf8dfcae1b3e74ebcfff5a\n"
        "5389688abf55bc46639385085bfaf1fda3552f63303e4d4a55d664d0f515d6ac\n"
        "bdcdc9e9204fe2099666b438af288629b1fa7f89797341bf7d435ce4ca2b706b\n";
    int mismatches = 0;
    VerifyingBackend verifying(f.backend, kWholeBlobLimit, [&mismatches] { ++mismatches; });
    verifying.use_chunk_manifests(dir);
    RequestHandler handler(f.kernel, verifying, f.link, 256 * 1024);
    const int fd = f.anon_fd();
    REQUIRE(handler.handle(open_msg(1, 5, "img", fd).span()).ok());
    REQUIRE(f.kernel.commands.back() == kmsg::format_copen(1, 8292));

    // Chunk 0 is written; the read-ahead it plans stops at chunk 1.
    REQUIRE(handler.handle(read_msg(60, 5, 0, 4096).span()).ok());
    drain_ahead(handler);
    // A READ of chunk 1 is completed without data (the reader gets EIO).
    REQUIRE(handler.handle(read_msg(61, 5, 4096, 4096).span()).ok());
    CHECK(handler.counters().reads_short == 1);
    // Chunk 2 is still served.
    REQUIRE(handler.handle(read_msg(62, 5, 8192, 4096).span()).ok());
    CHECK(f.kernel.completed.size() == 3);
    CHECK(mismatches >= 2);  // the read-ahead's try and the READ's

    std::string cache(3 * 4096, '\0');
    for (const auto& w : f.kernel.writes) {
        CAPTURE(w.offset);
        CHECK_FALSE((w.offset < 8192 && w.offset + w.bytes.size() > 4096));
        std::copy(w.bytes.begin(), w.bytes.end(), cache.begin() + static_cast<std::ptrdiff_t>(w.offset));
    }
    CHECK(cache.substr(0, 4096) == good.substr(0, 4096));
    CHECK(cache.substr(4096, 4096) == std::string(4096, '\0'));
    CHECK(cache.substr(8192, 100) == good.substr(8192));
}

// The VmFlags line of the mapping that holds `p` in /proc/self/smaps.
static std::string vm_flags_of(const void* p) {
    std::ifstream smaps("/proc/self/smaps");
    const auto at = reinterpret_cast<std::uintptr_t>(p);
    bool inside = false;
    for (std::string line; std::getline(smaps, line);) {
        std::uintptr_t begin = 0, end = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx ", &begin, &end) == 2 && line.find(':') > line.find(' ')) {
            inside = begin <= at && at < end;
        } else if (inside && line.rfind("VmFlags:", 0) == 0) {
            return line;
        }
    }
    return {};
}

TEST_CASE("worker: the copy buffer is aligned to huge pages, asks the kernel for them, and is faulted in") {
    auto buffer = allocate_copy_buffer();
    REQUIRE(buffer);
    CHECK(reinterpret_cast<std::uintptr_t>(buffer.get()) % kHugePageSize == 0);
    // Resident before any use: no READ pays for its page faults.
    std::vector<unsigned char> resident(kCopyChunkSize / static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
    REQUIRE(::mincore(buffer.get(), kCopyChunkSize, resident.data()) == 0);
    CHECK(std::all_of(resident.begin(), resident.end(), [](unsigned char r) { return (r & 1) != 0; }));
    // Every byte usable, as a direct read fills it: the allocation is that large. (A
    // byte written and read back proves nothing: past a short one's end it would too.)
    CHECK(::malloc_usable_size(buffer.get()) >= kCopyChunkSize);
    if (!std::filesystem::exists("/sys/kernel/mm/transparent_hugepage/enabled")) {
        MESSAGE("this kernel has no transparent huge pages; only the alignment is checked");
        return;
    }
    const std::string flags = vm_flags_of(buffer.get());
    CAPTURE(flags);
    CHECK(flags.find(" hg") != std::string::npos);  // MADV_HUGEPAGE taken
}

TEST_CASE("worker: beyond its most objects, the least recently read copy is closed, and a READ asks for it again") {
    Fixture f;
    f.handler.set_max_objects(2);
    for (const char* name : {"a", "b", "c"}) f.backend.blobs[name] = pattern(8192, 3);
    const int a = f.open_object(1, "a");
    f.open_object(2, "b", 2);
    // A READ of 1 makes 2 the least recently read.
    REQUIRE(f.handler.handle(read_msg(10, 1, 0, 4096).span()).ok());
    f.open_object(3, "c", 3);
    CHECK(f.handler.object_count() == 2);
    CHECK(f.handler.counters().objects_let_go == 1);
    CHECK(fd_is_open(a));
    f.events.clear();
    // Object 2's copy went: its READ asks the supervisor, which knows it.
    f.link.known[2] = wire::ObjectDescription{2, 8192, "erofs,vol", "b"};
    REQUIRE(f.handler.handle(read_msg(11, 2, 0, 4096).span()).ok());
    CHECK(f.events == Events{"query:2", "complete:11"});
    CHECK(f.handler.object_count() == 2);
    CHECK(f.handler.counters().objects_let_go == 2);
}

TEST_CASE("worker: malformed READ for an object this worker holds no copy of completes it through the supervisor's") {
    Fixture f;
    f.link.known[79] = wire::ObjectDescription{79, 8192, "erofs,vol", "elsewhere"};
    REQUIRE(f.handler.handle(read_msg(39, 79, 0, 0).span()).ok());  // zero length
    REQUIRE(f.link.handed_out_fds.size() == 1);
    CHECK(f.kernel.completed == std::vector<std::pair<int, std::uint32_t>>{{f.link.handed_out_fds[0], 39}});
    CHECK(f.events == Events{"query:79", "complete:39"});
    CHECK(f.handler.counters().malformed == 1);
    // The supervisor does not know it either: nothing to complete through.
    f.events.clear();
    REQUIRE(f.handler.handle(read_msg(40, 80, 0, 0).span()).ok());
    CHECK(f.events == Events{"query:80"});
}
