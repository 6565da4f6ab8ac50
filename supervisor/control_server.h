// The control socket on the supervisor's side. Clients are untrusted local
// processes: each is identified by SO_PEERCRED/SO_PEERGROUPS (root may run admin
// commands, root and members of the configured group may read), has one request of
// at most control::kMaxRequest bytes, and kClientTimeout to send it; at most
// kMaxClients wait at once. Nothing a client does blocks the event loop.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/control_protocol.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace cfs::supervisor {

inline constexpr auto kClientTimeout = std::chrono::seconds(2);
inline constexpr std::size_t kMaxClients = 16;

struct ControlReply {
    control::Code code = control::Code::ok;
    std::string text;
};

class ControlServer {
public:
    using Clock = std::chrono::steady_clock;
    // `admin` says whether the peer may run admin commands.
    using Handler = std::function<ControlReply(std::string_view command, bool admin)>;

    // Takes over a listening socket systemd passed, or creates one at `path` (its
    // directory is created 0755; the socket is 0660 root:`group`, or 0600 if no group).
    [[nodiscard]] static Result<ControlServer> adopt(unique_fd listener, std::optional<gid_t> group);
    [[nodiscard]] static Result<ControlServer> create(const std::string& path, std::optional<gid_t> group);

    [[nodiscard]] int listener() const { return listener_.get(); }
    // Accepts waiting connections; returns the new clients' fds (to watch).
    [[nodiscard]] std::vector<int> accept_clients();
    // A client's fd is readable: reads its request, answers, closes it.
    void serve(int client_fd, const Handler& handler);
    // Closes clients past their deadline; returns the earliest deadline left.
    std::optional<Clock::time_point> expire(Clock::time_point now);
    [[nodiscard]] std::optional<Clock::time_point> next_deadline() const;

private:
    ControlServer(unique_fd listener, std::optional<gid_t> group) : listener_(std::move(listener)), group_(group) {}
    struct Client {
        unique_fd fd;
        Clock::time_point deadline;
    };
    [[nodiscard]] bool may_read(int fd, uid_t uid) const;

    unique_fd listener_;
    std::optional<gid_t> group_;
    std::vector<Client> clients_;
};

}  // namespace cfs::supervisor
