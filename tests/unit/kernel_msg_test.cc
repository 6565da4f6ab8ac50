#include "common/kernel_msg.h"

#include <doctest/doctest.h>

#include <climits>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

using namespace cfs::kmsg;

// Builds a message byte by byte, as the kernel lays it out (little-endian).
class Bytes {
public:
    Bytes& u32(std::uint32_t v) {
        for (int i = 0; i < 4; ++i) out_.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
        return *this;
    }
    Bytes& u64(std::uint64_t v) {
        for (int i = 0; i < 8; ++i) out_.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
        return *this;
    }
    Bytes& raw(std::string_view s) {
        for (char c : s) out_.push_back(static_cast<std::byte>(c));
        return *this;
    }
    Bytes& zeros(std::size_t n) {
        out_.insert(out_.end(), n, std::byte{0});
        return *this;
    }
    // Overwrites the header's len field with the current size.
    Bytes& fix_len() {
        const auto n = static_cast<std::uint32_t>(out_.size());
        for (int i = 0; i < 4; ++i) out_[8 + i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
        return *this;
    }
    Bytes& truncate(std::size_t n) {
        out_.resize(n);
        return *this;
    }
    [[nodiscard]] const std::vector<std::byte>& get() const { return out_; }
    [[nodiscard]] std::span<const std::byte> span() const { return out_; }

private:
    std::vector<std::byte> out_;
};

Bytes header(std::uint32_t msg_id, std::uint32_t opcode, std::uint32_t len, std::uint32_t object_id) {
    Bytes b;
    b.u32(msg_id).u32(opcode).u32(len).u32(object_id);
    return b;
}

// An OPEN with the given keys (volume key passed WITH its NUL if it should have one);
// len fixed to the real size.
Bytes open_msg(std::uint32_t msg_id, std::uint32_t object_id, std::string_view volume,
               std::string_view cookie, std::uint32_t fd, std::uint32_t flags = 0) {
    Bytes b = header(msg_id, 0, 0, object_id);
    b.u32(static_cast<std::uint32_t>(volume.size()))
        .u32(static_cast<std::uint32_t>(cookie.size()))
        .u32(fd)
        .u32(flags)
        .raw(volume)
        .raw(cookie);
    b.fix_len();
    return b;
}

Bytes read_msg(std::uint32_t msg_id, std::uint32_t object_id, std::uint64_t off, std::uint64_t len) {
    Bytes b = header(msg_id, 2, 32, object_id);
    b.u64(off).u64(len);
    return b;
}

using namespace std::string_view_literals;

}  // namespace

TEST_CASE("kmsg: well-formed OPEN decodes to the exact fields") {
    // Cookie key with embedded NUL, 0xff and a control byte.
    const std::string cookie("blob\0\xff\x01z", 8);
    const auto m = open_msg(7, 42, "erofs,dom\0"sv, cookie, 5, 0x1234);
    REQUIRE(m.get().size() == 16 + 16 + 10 + 8);
    auto r = decode(m.span());
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    REQUIRE(std::holds_alternative<OpenRequest>(*r));
    const auto& o = std::get<OpenRequest>(*r);
    CHECK(o.msg_id == 7);
    CHECK(o.object_id == 42);
    CHECK(o.volume_key == "erofs,dom");
    CHECK(o.volume_key.size() == 9);
    CHECK(o.cookie_key == cookie);
    CHECK(o.cookie_key.size() == 8);
    CHECK(o.fd == 5);
    CHECK(o.flags == 0x1234);
}

TEST_CASE("kmsg: OPEN with an empty cookie key and a bare-NUL volume key") {
    const auto m = open_msg(1, 2, "\0"sv, "", 0);
    auto r = decode(m.span());
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    const auto& o = std::get<OpenRequest>(*r);
    CHECK(o.volume_key.empty());
    CHECK(o.cookie_key.empty());
    CHECK(o.fd == 0);
}

TEST_CASE("kmsg: OPEN with fd INT_MAX is accepted") {
    const auto m = open_msg(1, 2, "v\0"sv, "c", static_cast<std::uint32_t>(INT_MAX));
    auto r = decode(m.span());
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(std::get<OpenRequest>(*r).fd == INT_MAX);
}

TEST_CASE("kmsg: OPEN of exactly 1024 bytes is accepted") {
    const std::string cookie(1024 - 32 - 2, 'x');
    const auto m = open_msg(1, 2, "v\0"sv, cookie, 3);
    REQUIRE(m.get().size() == 1024);
    auto r = decode(m.span());
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(std::get<OpenRequest>(*r).cookie_key == cookie);
}

TEST_CASE("kmsg: well-formed READ decodes to the exact fields") {
    const auto m = read_msg(0xdeadbeef, 9, 0x1122334455667788ULL >> 8, 8192);
    auto r = decode(m.span());
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    REQUIRE(std::holds_alternative<ReadRequest>(*r));
    const auto& rd = std::get<ReadRequest>(*r);
    CHECK(rd.msg_id == 0xdeadbeef);
    CHECK(rd.object_id == 9);
    CHECK(rd.offset == 0x0011223344556677ULL);
    CHECK(rd.length == 8192);
}

TEST_CASE("kmsg: READ ending exactly at LLONG_MAX is accepted") {
    const auto m = read_msg(1, 1, static_cast<std::uint64_t>(LLONG_MAX) - 4096, 4096);
    auto r = decode(m.span());
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(std::get<ReadRequest>(*r).offset == static_cast<std::uint64_t>(LLONG_MAX) - 4096);
}

TEST_CASE("kmsg: well-formed CLOSE decodes to the exact fields") {
    const auto m = header(11, 1, 16, 77);
    auto r = decode(m.span());
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    REQUIRE(std::holds_alternative<CloseRequest>(*r));
    CHECK(std::get<CloseRequest>(*r).msg_id == 11);
    CHECK(std::get<CloseRequest>(*r).object_id == 77);
}

TEST_CASE("kmsg: malformed messages are rejected with the reason") {
    struct Case {
        std::string name;
        std::vector<std::byte> bytes;
        std::string expected;
    };
    const std::string big_cookie(1024 - 32 - 2 + 1, 'x');
    std::vector<Case> cases = {
        {"empty", {}, "truncated message: 0 bytes"},
        {"15 bytes", header(1, 1, 15, 1).truncate(15).get(), "truncated message: 15 bytes"},
        {"len bigger than read", header(1, 1, 17, 1).get(), "header says 17 bytes but 16 were read"},
        {"len smaller than read", header(1, 2, 16, 1).u64(0).u64(4096).get(),
         "header says 16 bytes but 32 were read"},
        {"len < 16", header(1, 1, 8, 1).get(), "header says 8 bytes but 16 were read"},
        {"more than 1024 bytes", open_msg(1, 2, "v\0"sv, big_cookie, 3).get(),
         "message of 1025 bytes exceeds the kernel's maximum of 1024"},
        {"unknown opcode", header(5, 3, 16, 6).get(), "unknown opcode 3 (msg_id 5, object 6)"},
        {"OPEN shorter than its fixed part", header(1, 0, 0, 2).u32(2).u32(0).u32(3).fix_len().get(),
         "payload of 12 bytes is shorter than the 16-byte OPEN header"},
        {"OPEN without payload", header(1, 0, 16, 2).get(),
         "payload of 0 bytes is shorter than the 16-byte OPEN header"},
        {"key sizes wrap around", header(1, 0, 0, 2).u32(0xffffffffU).u32(2).u32(3).u32(0).raw("v\0"sv).fix_len().get(),
         "key sizes 4294967295+2 exceed the 2 bytes present"},
        {"key sizes 0xffffffff + 1 (sum wraps to 0)",
         header(1, 0, 0, 2).u32(0xffffffffU).u32(1).u32(3).u32(0).fix_len().get(),
         "key sizes 4294967295+1 exceed the 0 bytes present"},
        {"key sizes 1 + 0xffffffff (sum wraps to 0)",
         header(1, 0, 0, 2).u32(1).u32(0xffffffffU).u32(3).u32(0).raw("v"sv).fix_len().get(),
         "key sizes 1+4294967295 exceed the 1 bytes present"},
        {"cookie size huge", header(1, 0, 0, 2).u32(2).u32(0xffffffffU).u32(3).u32(0).raw("v\0"sv).fix_len().get(),
         "key sizes 2+4294967295 exceed the 2 bytes present"},
        {"sizes exceed present", header(1, 0, 0, 2).u32(2).u32(2).u32(3).u32(0).raw("v\0x"sv).fix_len().get(),
         "key sizes 2+2 exceed the 3 bytes present"},
        {"sizes leave bytes", header(1, 0, 0, 2).u32(2).u32(1).u32(3).u32(0).raw("v\0xy"sv).fix_len().get(),
         "key sizes 2+1 leave 1 unexplained bytes"},
        {"volume key without NUL", open_msg(1, 2, "vol"sv, "c", 3).get(), "volume key is not NUL-terminated"},
        {"embedded NUL in volume key", open_msg(1, 2, "v\0l\0"sv, "c", 3).get(),
         "volume key contains an embedded NUL"},
        {"zero volume size", open_msg(1, 2, ""sv, "c", 3).get(), "empty volume key (no terminating NUL)"},
        {"fd > INT_MAX", open_msg(1, 2, "v\0"sv, "c", 0x80000000U).get(),
         "anon fd 2147483648 is not a valid descriptor"},
        {"fd = -1", open_msg(1, 2, "v\0"sv, "c", 0xffffffffU).get(),
         "anon fd 4294967295 is not a valid descriptor"},
        {"READ payload too short", header(1, 2, 0, 2).u64(0).fix_len().get(), "READ payload is 8 bytes, expected 16"},
        {"READ payload too long", header(1, 2, 0, 2).u64(0).u64(1).u32(0).fix_len().get(),
         "READ payload is 20 bytes, expected 16"},
        {"READ without payload", header(1, 2, 16, 2).get(), "READ payload is 0 bytes, expected 16"},
        {"READ len 0", read_msg(1, 2, 4096, 0).get(), "READ of zero bytes"},
        {"READ offset+len overflows", read_msg(1, 2, UINT64_MAX - 10, 4096).get(),
         "READ range 18446744073709551605+4096 overflows"},
        {"READ beyond file offsets", read_msg(1, 2, static_cast<std::uint64_t>(LLONG_MAX), 1).get(),
         "is beyond any file offset"},
        // LLONG_MAX - len would wrap and let it through; the read-ahead's end would wrap to 0.
        {"READ longer than any file", read_msg(1, 2, 8192, UINT64_MAX - 8192).get(), "is beyond any file offset"},
        {"READ len just past LLONG_MAX", read_msg(1, 2, 0, static_cast<std::uint64_t>(LLONG_MAX) + 1).get(),
         "is beyond any file offset"},
        {"CLOSE with payload", header(1, 1, 0, 2).u32(0).fix_len().get(), "CLOSE carries 4 unexpected bytes"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        auto r = decode(c.bytes);
        REQUIRE_FALSE(r.ok());
        const std::string msg = r.error().message();
        CAPTURE(msg);
        CHECK(msg.find(c.expected) != std::string::npos);
        CHECK(r.error().errnum == 0);
    }
}

TEST_CASE("kmsg: malformed message errors name the opcode and ids") {
    auto r = decode(read_msg(12, 34, 0, 0).span());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "malformed READ message (msg_id 12, object 34): READ of zero bytes");
}

TEST_CASE("kmsg: peek_header") {
    CHECK_FALSE(peek_header({}).has_value());
    const auto h15 = header(1, 2, 3, 4).truncate(15);
    CHECK_FALSE(peek_header(h15.span()).has_value());
    const auto h16 = header(0x01020304, 2, 999, 0xa0b0c0d0);
    auto h = peek_header(h16.span());
    REQUIRE(h.has_value());
    CHECK(h->msg_id == 0x01020304);
    CHECK(h->opcode == 2);
    CHECK(h->len == 999);  // peek does not validate
    CHECK(h->object_id == 0xa0b0c0d0);
}

TEST_CASE("kmsg: peek_open_fd") {
    const auto full = open_msg(1, 2, "v\0"sv, "c", 17);
    SUBCASE("whole OPEN") {
        auto fd = peek_open_fd(full.span());
        REQUIRE(fd.has_value());
        CHECK(*fd == 17);
    }
    SUBCASE("every prefix shorter than header + fixed OPEN part has no fd") {
        for (std::size_t n = 0; n < 32; ++n) {
            CAPTURE(n);
            CHECK_FALSE(peek_open_fd(full.span().first(n)).has_value());
        }
        auto fd = peek_open_fd(full.span().first(32));
        REQUIRE(fd.has_value());
        CHECK(*fd == 17);
    }
    SUBCASE("a malformed OPEN still yields its fd") {
        auto m = open_msg(1, 2, "nonul"sv, "c", 9);
        REQUIRE_FALSE(decode(m.span()).ok());
        auto fd = peek_open_fd(m.span());
        REQUIRE(fd.has_value());
        CHECK(*fd == 9);
    }
    SUBCASE("not an OPEN") {
        CHECK_FALSE(peek_open_fd(read_msg(1, 2, 0, 4096).span()).has_value());
        CHECK_FALSE(peek_open_fd(header(1, 1, 32, 2).zeros(16).span()).has_value());
    }
    SUBCASE("fd > INT_MAX") {
        CHECK_FALSE(peek_open_fd(open_msg(1, 2, "v\0"sv, "c", 0x80000000U).span()).has_value());
    }
}

TEST_CASE("kmsg: format_copen") {
    CHECK(format_copen(5, 4096) == "copen 5,4096");
    CHECK(format_copen(0, 0) == "copen 0,0");
    CHECK(format_copen(4294967295U, 1099511627776LL) == "copen 4294967295,1099511627776");
    CHECK(format_copen(7, -2) == "copen 7,-2");
    CHECK(format_copen(8, -22) == "copen 8,-22");
}

TEST_CASE("kmsg: opcode_name") {
    CHECK(opcode_name(0) == "OPEN");
    CHECK(opcode_name(1) == "CLOSE");
    CHECK(opcode_name(2) == "READ");
    CHECK(opcode_name(3) == "unknown");
    CHECK(opcode_name(0xffffffffU) == "unknown");
}

TEST_CASE("kmsg: printable escapes everything but plain printable ASCII") {
    CHECK(printable("abc-XYZ_0.9 ~") == "abc-XYZ_0.9 ~");
    CHECK(printable("") == "");
    CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
    CHECK(printable("\x01\x1f\x7f\x80\xff") == "\\x01\\x1f\\x7f\\x80\\xff");
    CHECK(printable("\n\t") == "\\x0a\\x09");
    // The characters that would make a quoted log field ambiguous.
    CHECK(printable("a\\b\"c") == "a\\x5cb\\x22c");
}
