// The control socket's protocol, shared by the supervisor and its CLI: one
// SOCK_SEQPACKET connection per request. The client sends one datagram, the command
// line ("status", "status --json"); the supervisor answers with one datagram,
//     "<code>\n<text>"
// where code is one of ControlCode and text is what the CLI prints (stdout for ok,
// stderr otherwise), then closes the connection.
#pragma once

#include <cstddef>
#include <string_view>

namespace cfs::control {

inline constexpr std::size_t kMaxRequest = 256;
inline constexpr std::size_t kMaxResponse = 256 * 1024;
inline constexpr const char* kDefaultSocketPath = "/run/cfsupervisor/control";
// The name systemd passes the socket-activated listener under (cfsupervisor.socket).
inline constexpr std::string_view kListenFdName = "control";

enum class Code : int { ok = 0, failed = 1, denied = 4, unknown_command = 2 };

}  // namespace cfs::control
