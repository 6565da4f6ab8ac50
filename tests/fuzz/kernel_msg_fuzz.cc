// libFuzzer target: the kernel message decoder on arbitrary bytes. Beyond "no crash"
// (ASan/UBSan), every message decode() accepts must satisfy the invariants its
// callers rely on; a violation aborts so the fuzzer reports it.
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <variant>

#include "common/kernel_msg.h"

namespace {

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "kernel_msg_fuzz: invariant violated: %s\n", what);
        std::abort();
    }
}

void check_printable(const std::string& key) {
    const std::string p = cfs::kmsg::printable(key);
    require(p.size() >= key.size(), "printable() shortened a key");
    for (unsigned char c : p) require(c >= 0x20 && c < 0x7f && c != '"', "printable() left a raw byte");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace cfs::kmsg;
    const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);

    const auto header = peek_header(in);
    require(header.has_value() == (size >= kHeaderSize), "peek_header disagrees with the size");
    const auto fd = peek_open_fd(in);
    if (fd) {
        require(size >= kHeaderSize + kOpenFixedSize, "peek_open_fd past the input");
        require(header && header->opcode == static_cast<std::uint32_t>(Opcode::open), "peek_open_fd on a non-OPEN");
        require(*fd >= 0, "peek_open_fd returned a negative fd");
    }
    (void)opcode_name(header ? header->opcode : 0);

    auto decoded = decode(in);
    if (!decoded) {
        require(!decoded.error().context.empty(), "rejection without a reason");
        return 0;
    }
    require(header.has_value(), "decoded without a header");
    require(size <= kMaxMessageSize, "decoded an oversized message");
    require(header->len == size, "decoded with a len that is not the size");

    if (const auto* o = std::get_if<OpenRequest>(&*decoded)) {
        require(o->msg_id == header->msg_id && o->object_id == header->object_id, "OPEN ids differ from header");
        require(fd.has_value() && *fd == o->fd, "OPEN fd differs from peek_open_fd");
        require(o->fd >= 0, "OPEN fd negative");
        require(o->volume_key.find('\0') == std::string::npos, "volume key holds a NUL");
        require(kHeaderSize + kOpenFixedSize + o->volume_key.size() + 1 + o->cookie_key.size() == size,
                "OPEN keys do not account for every byte");
        require(data[kHeaderSize + kOpenFixedSize + o->volume_key.size()] == 0,
                "volume key is not followed by its NUL");
        require(std::memcmp(data + kHeaderSize + kOpenFixedSize, o->volume_key.data(), o->volume_key.size()) == 0,
                "volume key is not the bytes after the fixed part");
        require(std::memcmp(data + kHeaderSize + kOpenFixedSize + o->volume_key.size() + 1,
                            o->cookie_key.data(), o->cookie_key.size()) == 0,
                "cookie key is not the bytes after the volume key");
        check_printable(o->volume_key);
        check_printable(o->cookie_key);
    } else if (const auto* r = std::get_if<ReadRequest>(&*decoded)) {
        require(size == kHeaderSize + kReadPayloadSize, "READ of the wrong size");
        require(r->length > 0, "READ of zero bytes");
        require(r->offset <= static_cast<std::uint64_t>(LLONG_MAX) - r->length, "READ range beyond file offsets");
        require(r->msg_id == header->msg_id && r->object_id == header->object_id, "READ ids differ from header");
    } else {
        const auto& c = std::get<CloseRequest>(*decoded);
        require(size == kHeaderSize, "CLOSE with a payload");
        require(c.msg_id == header->msg_id && c.object_id == header->object_id, "CLOSE ids differ from header");
    }
    return 0;
}
