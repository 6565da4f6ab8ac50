#include "common/kernel_msg.h"

#include <climits>
#include <cstring>

#include <fmt/format.h>

namespace cfs::kmsg {
namespace {

// Reads fields at fixed offsets of a buffer already checked to be long enough; the
// kernel writes host-endian, which on every architecture we build for is little.
std::uint32_t load_u32(std::span<const std::byte> b, std::size_t at) {
    std::uint32_t v;
    std::memcpy(&v, b.data() + at, sizeof v);
    return v;
}
std::uint64_t load_u64(std::span<const std::byte> b, std::size_t at) {
    std::uint64_t v;
    std::memcpy(&v, b.data() + at, sizeof v);
    return v;
}

Error malformed(const Header& h, std::string what) {
    return logic_error(fmt::format("malformed {} message (msg_id {}, object {}): {}",
                                   opcode_name(h.opcode), h.msg_id, h.object_id, what));
}

Result<Request> decode_open(const Header& h, std::span<const std::byte> payload) {
    if (payload.size() < kOpenFixedSize)
        return malformed(h, fmt::format("payload of {} bytes is shorter than the {}-byte OPEN header",
                                        payload.size(), kOpenFixedSize));
    const std::uint32_t volume_size = load_u32(payload, 0);
    const std::uint32_t cookie_size = load_u32(payload, 4);
    const std::uint32_t fd = load_u32(payload, 8);
    const std::uint32_t flags = load_u32(payload, 12);
    const std::size_t keys = payload.size() - kOpenFixedSize;
    // Compared separately so that huge sizes cannot wrap around when added.
    if (volume_size > keys || cookie_size > keys - volume_size)
        return malformed(h, fmt::format("key sizes {}+{} exceed the {} bytes present",
                                        volume_size, cookie_size, keys));
    if (volume_size + cookie_size != keys)
        return malformed(h, fmt::format("key sizes {}+{} leave {} unexplained bytes", volume_size,
                                        cookie_size, keys - volume_size - cookie_size));
    if (volume_size == 0) return malformed(h, "empty volume key (no terminating NUL)");
    if (fd > static_cast<std::uint32_t>(INT_MAX))
        return malformed(h, fmt::format("anon fd {} is not a valid descriptor", fd));
    const auto* keys_begin = reinterpret_cast<const char*>(payload.data() + kOpenFixedSize);
    std::string_view volume(keys_begin, volume_size);
    if (volume.back() != '\0') return malformed(h, "volume key is not NUL-terminated");
    volume.remove_suffix(1);
    if (volume.find('\0') != std::string_view::npos)
        return malformed(h, "volume key contains an embedded NUL");

    OpenRequest r;
    r.msg_id = h.msg_id;
    r.object_id = h.object_id;
    r.volume_key = std::string(volume);
    r.cookie_key = std::string(keys_begin + volume_size, cookie_size);
    r.fd = static_cast<int>(fd);
    r.flags = flags;
    return Request{std::move(r)};
}

Result<Request> decode_read(const Header& h, std::span<const std::byte> payload) {
    if (payload.size() != kReadPayloadSize)
        return malformed(h, fmt::format("READ payload is {} bytes, expected {}", payload.size(),
                                        kReadPayloadSize));
    ReadRequest r{h.msg_id, h.object_id, load_u64(payload, 0), load_u64(payload, 8)};
    if (r.length == 0) return malformed(h, "READ of zero bytes");
    if (r.offset > UINT64_MAX - r.length)
        return malformed(h, fmt::format("READ range {}+{} overflows", r.offset, r.length));
    // Each side alone first: LLONG_MAX - length wraps for a length past LLONG_MAX.
    if (r.length > static_cast<std::uint64_t>(LLONG_MAX) || r.offset > static_cast<std::uint64_t>(LLONG_MAX) - r.length)
        return malformed(h, fmt::format("READ range {}+{} is beyond any file offset", r.offset,
                                        r.length));
    return Request{r};
}

}  // namespace

std::optional<Header> peek_header(std::span<const std::byte> m) {
    if (m.size() < kHeaderSize) return std::nullopt;
    return Header{load_u32(m, 0), load_u32(m, 4), load_u32(m, 8), load_u32(m, 12)};
}

std::optional<int> peek_open_fd(std::span<const std::byte> m) {
    auto h = peek_header(m);
    if (!h || h->opcode != static_cast<std::uint32_t>(Opcode::open)) return std::nullopt;
    if (m.size() < kHeaderSize + kOpenFixedSize) return std::nullopt;
    const std::uint32_t fd = load_u32(m, kHeaderSize + 8);
    if (fd > static_cast<std::uint32_t>(INT_MAX)) return std::nullopt;
    return static_cast<int>(fd);
}

Result<Request> decode(std::span<const std::byte> m) {
    if (m.size() > kMaxMessageSize)
        return logic_error(fmt::format("message of {} bytes exceeds the kernel's maximum of {}",
                                       m.size(), kMaxMessageSize));
    auto h = peek_header(m);
    if (!h)
        return logic_error(fmt::format("truncated message: {} bytes, shorter than the {}-byte header",
                                       m.size(), kHeaderSize));
    if (h->len != m.size())
        return malformed(*h, fmt::format("header says {} bytes but {} were read", h->len, m.size()));
    const auto payload = m.subspan(kHeaderSize);
    switch (h->opcode) {
        case static_cast<std::uint32_t>(Opcode::open): return decode_open(*h, payload);
        case static_cast<std::uint32_t>(Opcode::read): return decode_read(*h, payload);
        case static_cast<std::uint32_t>(Opcode::close):
            if (!payload.empty())
                return malformed(*h, fmt::format("CLOSE carries {} unexpected bytes", payload.size()));
            return Request{CloseRequest{h->msg_id, h->object_id}};
        default:
            return logic_error(fmt::format("unknown opcode {} (msg_id {}, object {})", h->opcode,
                                           h->msg_id, h->object_id));
    }
}

std::string format_copen(std::uint32_t msg_id, std::int64_t size_or_negative_errno) {
    return fmt::format("copen {},{}", msg_id, size_or_negative_errno);
}

std::string_view opcode_name(std::uint32_t opcode) {
    switch (opcode) {
        case static_cast<std::uint32_t>(Opcode::open): return "OPEN";
        case static_cast<std::uint32_t>(Opcode::close): return "CLOSE";
        case static_cast<std::uint32_t>(Opcode::read): return "READ";
        default: return "unknown";
    }
}

std::string printable(std::string_view key) {
    std::string out;
    out.reserve(key.size());
    for (unsigned char c : key) {
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
            out += static_cast<char>(c);
        else
            out += fmt::format("\\x{:02x}", c);
    }
    return out;
}

}  // namespace cfs::kmsg
