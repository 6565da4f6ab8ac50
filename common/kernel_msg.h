// Decoder for the messages the kernel's on-demand cachefiles device hands out on
// read(), and encoder for the text replies written back to it.
//
// Wire format (include/uapi/linux/cachefiles.h), all little-endian u32 unless noted:
//   header  { msg_id, opcode, len, object_id }  len counts the header too, <= 1024
//   OPEN    { volume_key_size, cookie_key_size, fd, flags, volume_key[], cookie_key[] }
//            volume_key is NUL-terminated and its size includes the NUL; cookie_key is
//            binary. fd is an anonymous fd the kernel already installed in the reader.
//   READ    { u64 off, u64 len }
//   CLOSE   no payload
// A read() returns exactly one whole message, so `len` must equal the bytes read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "common/result.h"

namespace cfs::kmsg {

inline constexpr std::size_t kMaxMessageSize = 1024;  // CACHEFILES_MSG_MAX_SIZE
inline constexpr std::size_t kHeaderSize = 16;
inline constexpr std::size_t kOpenFixedSize = 16;
inline constexpr std::size_t kReadPayloadSize = 16;

enum class Opcode : std::uint32_t { open = 0, close = 1, read = 2 };

struct Header {
    std::uint32_t msg_id = 0;
    std::uint32_t opcode = 0;
    std::uint32_t len = 0;
    std::uint32_t object_id = 0;
};

struct OpenRequest {
    std::uint32_t msg_id = 0;
    std::uint32_t object_id = 0;
    std::string volume_key;  // without its terminating NUL
    std::string cookie_key;  // binary, as the netfs made it
    int fd = -1;             // installed in this process by the kernel; caller owns it
    std::uint32_t flags = 0;
};

struct ReadRequest {
    std::uint32_t msg_id = 0;
    std::uint32_t object_id = 0;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

struct CloseRequest {
    std::uint32_t msg_id = 0;
    std::uint32_t object_id = 0;
};

using Request = std::variant<OpenRequest, ReadRequest, CloseRequest>;

// Validates every size field against the bytes actually read; never reads past them.
[[nodiscard]] Result<Request> decode(std::span<const std::byte> message);

// For a message decode() rejected: the header, when at least that much is present,
// so the caller can still answer or log the request it belongs to.
[[nodiscard]] std::optional<Header> peek_header(std::span<const std::byte> message);
// For a rejected OPEN: the anon fd the kernel installed, when the fixed part of the
// OPEN payload is present, so the caller can close it instead of leaking it.
[[nodiscard]] std::optional<int> peek_open_fd(std::span<const std::byte> message);

// "copen <msg_id>,<size>" (size >= 0) or "copen <msg_id>,-<errno>" (a failed open).
[[nodiscard]] std::string format_copen(std::uint32_t msg_id, std::int64_t size_or_negative_errno);

[[nodiscard]] std::string_view opcode_name(std::uint32_t opcode);

// Printable form of a binary cookie key for logs: printable ASCII kept, the rest \xNN.
[[nodiscard]] std::string printable(std::string_view key);

}  // namespace cfs::kmsg
