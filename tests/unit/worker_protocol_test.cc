#include "common/worker_protocol.h"

#include <fmt/format.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <variant>
#include <vector>

namespace {

using namespace cfs::wire;

std::vector<std::byte> le32(std::uint32_t v) {
    std::vector<std::byte> b(4);
    std::memcpy(b.data(), &v, 4);
    return b;
}

void append(std::vector<std::byte>& to, const std::vector<std::byte>& more) {
    to.insert(to.end(), more.begin(), more.end());
}

ObjectDescription sample_description() {
    ObjectDescription d;
    d.object_id = 0x01020304;
    d.size = 0x1122334455667788ULL;
    d.volume_key = "erofs,domain";
    d.cookie_key = std::string("blob\0\xff", 6);
    return d;
}

ObjectOpened sample_opened() {
    ObjectOpened o;
    static_cast<ObjectDescription&>(o) = sample_description();
    return o;
}

bool same_description(const ObjectDescription& a, const ObjectDescription& b) {
    return a.object_id == b.object_id && a.size == b.size && a.volume_key == b.volume_key &&
           a.cookie_key == b.cookie_key;
}

// One sample of every type, with non-trivial field values.
std::vector<Message> samples() {
    ObjectInfo info;
    static_cast<ObjectDescription&>(info) = sample_description();
    info.object_id = 99;
    info.volume_key = "";
    info.cookie_key = std::string(kMaxKeySize, 'k');
    ObjectShare share;
    static_cast<ObjectDescription&>(share) = sample_description();
    share.object_id = 0x7fffffff;
    share.volume_key = std::string(kMaxKeySize, 'v');
    return {
        Init{7, 3, 2, 4096, 3},
        Ready{},
        sample_opened(),
        ObjectAck{11},
        ObjectCopened{12},
        ObjectQuery{13},
        info,
        ObjectUnknown{14},
        ObjectClosed{15},
        ObjectForget{0xffffffffU},
        Pause{},
        Paused{},
        Resume{},
        Progress{0x0123456789abcdefULL},
        share,
        BlobStore{2, 1, "img_a", "http://registry.test:8080/blobs/", "registry.test:8080:10.0.0.1,[fd00::1]",
                  "user:secret", "http://auth.test:5001\nhttps://store.test"},
        BlobStoreDir{2},
    };
}

bool equal(const Message& a, const Message& b) {
    if (a.index() != b.index()) return false;
    return std::visit(
        [&b](const auto& x) -> bool {
            using T = std::decay_t<decltype(x)>;
            const auto& y = std::get<T>(b);
            if constexpr (std::is_same_v<T, Init>)
                return x.worker_id == y.worker_id && x.log_level == y.log_level && x.fault_point == y.fault_point &&
                       x.read_ahead_kib == y.read_ahead_kib && x.blob_stores == y.blob_stores;
            else if constexpr (std::is_same_v<T, BlobStore>)
                return x.store == y.store && x.has_dir == y.has_dir && x.volume == y.volume && x.url == y.url &&
                       x.resolve == y.resolve && x.credentials == y.credentials && x.origins == y.origins;
            else if constexpr (std::is_same_v<T, BlobStoreDir>)
                return x.store == y.store;
            else if constexpr (std::is_same_v<T, Progress>)
                return x.answered_ns == y.answered_ns;
            else if constexpr (requires { x.object_id; } && !std::is_base_of_v<ObjectDescription, T>)
                return x.object_id == y.object_id;
            else if constexpr (std::is_base_of_v<ObjectDescription, T>) return same_description(x, y);
            else return true;  // no fields
        },
        a);
}

}  // namespace

TEST_CASE("wire: every message type round-trips with equal fields") {
    for (const auto& m : samples()) {
        const auto type = type_of(m);
        CAPTURE(type_name(static_cast<std::uint32_t>(type)));
        const auto bytes = encode(m);
        REQUIRE(bytes.size() >= 4);
        std::uint32_t raw_type;
        std::memcpy(&raw_type, bytes.data(), 4);
        CHECK(raw_type == static_cast<std::uint32_t>(type));
        CHECK(bytes.size() <= kMaxMessageSize);
        auto back = decode(bytes, fd_count(type));
        REQUIRE_MESSAGE(back.ok(), back.error().message());
        CHECK(type_of(*back) == type);
        CHECK(equal(*back, m));
        CHECK(encode(*back) == bytes);
    }
}

TEST_CASE("wire: the ObjectOpened layout is u32 type, u32 id, u64 size, u16-prefixed strings") {
    ObjectOpened o;
    o.object_id = 5;
    o.size = 4096;
    o.volume_key = "ab";
    o.cookie_key = "c";
    const auto bytes = encode(o);
    REQUIRE(bytes.size() == 4 + 4 + 8 + 2 + 2 + 2 + 1);
    std::uint32_t v32;
    std::uint64_t v64;
    std::uint16_t v16;
    std::memcpy(&v32, bytes.data(), 4);
    CHECK(v32 == 3);
    std::memcpy(&v32, bytes.data() + 4, 4);
    CHECK(v32 == 5);
    std::memcpy(&v64, bytes.data() + 8, 8);
    CHECK(v64 == 4096);
    std::memcpy(&v16, bytes.data() + 16, 2);
    CHECK(v16 == 2);
    CHECK(static_cast<char>(bytes[18]) == 'a');
    CHECK(static_cast<char>(bytes[19]) == 'b');
    std::memcpy(&v16, bytes.data() + 20, 2);
    CHECK(v16 == 1);
    CHECK(static_cast<char>(bytes[22]) == 'c');
}

TEST_CASE("wire: ObjectShare is laid out as ObjectInfo, under its own type 15") {
    ObjectShare share;
    static_cast<ObjectDescription&>(share) = sample_description();
    ObjectInfo info;
    static_cast<ObjectDescription&>(info) = sample_description();
    auto a = encode(share), b = encode(info);
    REQUIRE(a.size() == b.size());
    CHECK(a[0] == std::byte{15});
    CHECK(b[0] == std::byte{7});
    CHECK(std::equal(a.begin() + 4, a.end(), b.begin() + 4));
    auto back = decode(a, 1);
    REQUIRE_MESSAGE(back.ok(), back.error().message());
    REQUIRE(std::holds_alternative<ObjectShare>(*back));
    CHECK(same_description(std::get<ObjectShare>(*back), sample_description()));
    // Without its fd (or with two) it is no ObjectShare.
    CHECK_FALSE(decode(a, 0).ok());
    CHECK_FALSE(decode(a, 2).ok());
    // One past the last type is unknown.
    auto unknown = a;
    const auto next_type = static_cast<std::uint8_t>(std::variant_size_v<Message> + 1);
    unknown[0] = std::byte{next_type};
    auto r = decode(unknown, 1);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "unknown message type " + std::to_string(next_type));
}

TEST_CASE("wire: fd counts per type") {
    CHECK(fd_count(Type::init) == 2);  // device, statistics page
    CHECK(fd_count(Type::object_opened) == 1);
    CHECK(fd_count(Type::object_info) == 1);
    CHECK(fd_count(Type::blob_store_dir) == 1);  // the store's directory
    CHECK(fd_count(Type::blob_store) == 0);
    CHECK(fd_count(Type::object_share) == 1);
    for (auto t : {Type::ready, Type::object_ack, Type::object_copened, Type::object_query,
                   Type::object_unknown, Type::object_closed, Type::object_forget})
        CHECK(fd_count(t) == 0);
    CHECK(fd_count(static_cast<Type>(0)) == 0);
    CHECK(fd_count(static_cast<Type>(11)) == 0);
}

TEST_CASE("wire: a wrong number of fds is rejected for every type") {
    for (const auto& m : samples()) {
        const auto type = type_of(m);
        CAPTURE(type_name(static_cast<std::uint32_t>(type)));
        const auto bytes = encode(m);
        for (std::size_t fds = 0; fds <= 5; ++fds) {
            CAPTURE(fds);
            auto r = decode(bytes, fds);
            if (fds == fd_count(type)) {
                CHECK(r.ok());
            } else {
                REQUIRE_FALSE(r.ok());
                CHECK(r.error().message().find("fds, expected") != std::string::npos);
            }
        }
    }
}

TEST_CASE("wire: unknown types are rejected") {
    const auto next_type = static_cast<std::uint32_t>(std::variant_size_v<Message> + 1);
    for (std::uint32_t t : {0U, next_type, 0x80000000U, 0xffffffffU}) {
        CAPTURE(t);
        auto bytes = le32(t);
        append(bytes, le32(1));
        auto r = decode(bytes, 0);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message() == "unknown message type " + std::to_string(t));
        CHECK(type_name(t) == "unknown");
    }
}

TEST_CASE("wire: fewer than 4 bytes has no type") {
    for (std::size_t n = 0; n < 4; ++n) {
        CAPTURE(n);
        std::vector<std::byte> bytes(n, std::byte{2});
        auto r = decode(bytes, 0);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message().find("has no type") != std::string::npos);
    }
}

TEST_CASE("wire: an ObjectOpened truncated at every byte position is rejected") {
    const auto bytes = encode(sample_opened());
    REQUIRE(decode(bytes, 1).ok());
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        CAPTURE(n);
        const std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + static_cast<long>(n));
        auto r = decode(prefix, 1);
        CHECK_FALSE(r.ok());
        if (n >= 4) CHECK(r.error().message().find("ObjectOpened message: truncated") != std::string::npos);
    }
}

TEST_CASE("wire: truncated fixed-size messages are rejected") {
    for (const auto& m : samples()) {
        const auto bytes = encode(m);
        CAPTURE(type_name(static_cast<std::uint32_t>(type_of(m))));
        for (std::size_t n = 0; n < bytes.size(); ++n) {
            CAPTURE(n);
            const std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + static_cast<long>(n));
            CHECK_FALSE(decode(prefix, fd_count(type_of(m))).ok());
        }
    }
}

TEST_CASE("wire: trailing bytes are rejected") {
    for (const auto& m : samples()) {
        CAPTURE(type_name(static_cast<std::uint32_t>(type_of(m))));
        auto bytes = encode(m);
        bytes.push_back(std::byte{0});
        auto r = decode(bytes, fd_count(type_of(m)));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message().find("trailing bytes") != std::string::npos);
    }
}

TEST_CASE("wire: a string length larger than what remains is rejected") {
    ObjectOpened o;
    o.object_id = 1;
    o.size = 1;
    o.volume_key = "vol";
    o.cookie_key = "blob";
    auto bytes = encode(o);
    // The cookie key's u16 length sits at 4+4+8 + 2+3.
    const std::size_t at = 4 + 4 + 8 + 2 + 3;
    SUBCASE("one more than present") {
        const std::uint16_t n = 5;
        std::memcpy(bytes.data() + at, &n, 2);
    }
    SUBCASE("0xffff") {
        const std::uint16_t n = 0xffff;
        std::memcpy(bytes.data() + at, &n, 2);
    }
    SUBCASE("volume key length overruns") {
        const std::uint16_t n = 200;
        std::memcpy(bytes.data() + 16, &n, 2);
    }
    auto r = decode(bytes, 1);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("truncated or oversized") != std::string::npos);
}

TEST_CASE("wire: a string longer than kMaxKeySize is rejected even when present") {
    std::vector<std::byte> bytes = le32(static_cast<std::uint32_t>(Type::object_opened));
    append(bytes, le32(1));
    append(bytes, std::vector<std::byte>(8, std::byte{0}));
    const std::uint16_t n = kMaxKeySize + 1;
    bytes.push_back(static_cast<std::byte>(n & 0xff));
    bytes.push_back(static_cast<std::byte>(n >> 8));
    bytes.insert(bytes.end(), n, std::byte{'v'});
    bytes.push_back(std::byte{1});
    bytes.push_back(std::byte{0});
    bytes.push_back(std::byte{'c'});
    REQUIRE(bytes.size() <= kMaxMessageSize);
    auto r = decode(bytes, 1);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("truncated or oversized") != std::string::npos);
}

TEST_CASE("wire: encode truncates a key to kMaxKeySize") {
    ObjectOpened o;
    o.object_id = 3;
    o.volume_key = "erofs,x";
    o.cookie_key = std::string(kMaxKeySize + 10, 'c');
    const auto bytes = encode(o);
    CHECK(bytes.size() <= kMaxMessageSize);
    auto r = decode(bytes, 1);
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(std::get<ObjectOpened>(*r).volume_key == "erofs,x");
    CHECK(std::get<ObjectOpened>(*r).cookie_key == std::string(kMaxKeySize, 'c'));
}

TEST_CASE("wire: keys as large as one kernel message allows always fit") {
    // An OPEN is at most 1024 bytes with a 32-byte fixed part: the keys share 992.
    ObjectOpened o;
    o.object_id = 3;
    o.size = UINT64_MAX;
    o.volume_key = std::string(991, 'v');
    o.cookie_key = std::string(1, 'c');
    auto r = decode(encode(o), 1);
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    o.volume_key = std::string(1, 'v');
    o.cookie_key = std::string(991, 'c');
    r = decode(encode(o), 1);
    REQUIRE_MESSAGE(r.ok(), r.error().message());
}

// encode() caps each key at kMaxKeySize; the largest message it can then make must
// still be accepted by decode().
TEST_CASE("wire: encode output with two max-length keys fits kMaxMessageSize") {
    ObjectOpened o;
    o.object_id = 3;
    o.volume_key = std::string(kMaxKeySize, 'v');
    o.cookie_key = std::string(kMaxKeySize, 'c');
    const auto bytes = encode(o);
    CHECK(bytes.size() <= kMaxMessageSize);
    CHECK(decode(bytes, 1).ok());
}

TEST_CASE("wire: an oversized message is rejected before anything else") {
    auto bytes = encode(ObjectAck{1});
    bytes.resize(kMaxMessageSize + 1);
    auto r = decode(bytes, 0);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == fmt::format("message of {} bytes exceeds {}", kMaxMessageSize + 1, kMaxMessageSize));
}

TEST_CASE("wire: type names") {
    CHECK(type_name(1) == "Init");
    CHECK(type_name(2) == "Ready");
    CHECK(type_name(3) == "ObjectOpened");
    CHECK(type_name(4) == "ObjectAck");
    CHECK(type_name(5) == "ObjectCopened");
    CHECK(type_name(6) == "ObjectQuery");
    CHECK(type_name(7) == "ObjectInfo");
    CHECK(type_name(8) == "ObjectUnknown");
    CHECK(type_name(9) == "ObjectClosed");
    CHECK(type_name(10) == "ObjectForget");
    CHECK(type_name(15) == "ObjectShare");
    CHECK(type_name(16) == "BlobStore");
    CHECK(type_name(17) == "BlobStoreDir");
    CHECK(type_name(18) == "unknown");
}
