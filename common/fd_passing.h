// The one place fds cross a unix socket. Strict on receipt: exactly one SCM_RIGHTS
// control message at most, no other control data, no truncation; anything else closes
// every fd that arrived and fails, so a hostile peer can neither leak fds into us nor
// smuggle in more than the message type declares.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cfs {

inline constexpr std::size_t kMaxFdsPerMessage = 4;

// Sends one datagram (SOCK_SEQPACKET) carrying `data` and, if any, `fds`.
[[nodiscard]] Status send_message(int sock, std::span<const std::byte> data, std::span<const int> fds);

struct ReceivedMessage {
    std::size_t size = 0;  // 0 means the peer closed the connection
    std::vector<unique_fd> fds;
};

// Receives one datagram into `buffer`. A datagram larger than the buffer, more than
// `max_fds` fds, or control data other than SCM_RIGHTS is an error (fds closed).
// EAGAIN on a non-blocking socket comes back as an Error with errnum EAGAIN.
[[nodiscard]] Result<ReceivedMessage> receive_message(int sock, std::span<std::byte> buffer,
                                                      std::size_t max_fds);

}  // namespace cfs
