// The control socket on the supervisor's side. Clients are untrusted local
// processes: each is identified by SO_PEERCRED/SO_PEERGROUPS (root may run admin
// commands, root and members of the configured group may read), has one request of
// at most control::kMaxRequest bytes, and kClientTimeout to send it; at most
// kMaxClients wait at once. Nothing a client does blocks the event loop.
//
// A command that takes a while (restart-workers) is answered later: its handler
// returns a reply with `answer_within` set, serve() returns the client's id, and
// answer() sends the real reply once there is one. A client still waiting at that
// deadline is told the command did not finish in time.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
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
    ControlReply() = default;
    ControlReply(control::Code c, std::string t) : code(c), text(std::move(t)) {}
    // No answer yet: the caller answers within `within` (ControlServer::answer).
    [[nodiscard]] static ControlReply later(std::chrono::seconds within) {
        ControlReply r;
        r.answer_within = within;
        return r;
    }

    control::Code code = control::Code::ok;
    std::string text;
    std::optional<std::chrono::seconds> answer_within;
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
    // The group config control.group names (nullopt when empty); an Error naming it
    // when it does not exist.
    [[nodiscard]] static Result<std::optional<gid_t>> resolve_group(const std::string& name);

    [[nodiscard]] int listener() const { return listener_.get(); }
    // Accepts waiting connections; returns the new clients' fds (to watch).
    [[nodiscard]] std::vector<int> accept_clients();
    // Every client whose request has not been read yet, accepted by this call or an
    // earlier one: what a new event loop must watch (hold_device.h's, each retry; the
    // supervisor's, once it starts). The server's own table, so no fd it has closed
    // since (expire, a full table) is among them.
    [[nodiscard]] std::vector<int> awaiting_request() const;
    using ClientId = std::uint64_t;
    // A client's fd is readable: reads its request, answers, closes it. When the
    // handler put the answer off, returns the id to answer() under.
    std::optional<ClientId> serve(int client_fd, const Handler& handler);
    // The answer to a request put off; a client that left (or timed out) is skipped.
    void answer(ClientId client, const ControlReply& reply);
    // Who may read status from now on (reload of control.group). A socket this
    // server created gets the group and mode too; systemd's socket unit keeps its own
    // (SocketGroup=, SocketMode=).
    [[nodiscard]] Status set_group(std::optional<gid_t> group);
    // Whether a client connecting to the path this socket was bound to reaches it:
    // false once the socket file there was removed, or replaced by another socket
    // (a systemd that restarted cfsupervisor.socket under its running service would
    // listen on a new one there and hand the service nothing; systemd 252 refuses
    // that restart and leaves the file as it is). True when it cannot tell (no path
    // known); `bound_path()` is "" then.
    [[nodiscard]] bool reachable_at_path() const;
    [[nodiscard]] const std::string& bound_path() const { return bound_path_; }
    // Closes clients past their deadline; returns the earliest deadline left.
    std::optional<Clock::time_point> expire(Clock::time_point now);
    [[nodiscard]] std::optional<Clock::time_point> next_deadline() const;

private:
    ControlServer(unique_fd listener, std::optional<gid_t> group, std::string path = {})
        : listener_(std::move(listener)), group_(group), path_(std::move(path)) {
        note_bound_path();
    }
    // Remembers which socket file the listener's address names now (getsockname,
    // stat): what reachable_at_path compares with.
    void note_bound_path();
    struct Client {
        unique_fd fd;
        Clock::time_point deadline;
        ClientId id = 0;
        bool answer_pending = false;  // its request was read; the answer comes later
        bool root = false;            // dropped last when too many wait
    };
    [[nodiscard]] bool may_read(int fd, const ucred& peer) const;

    unique_fd listener_;
    std::optional<gid_t> group_;
    std::string path_;  // the socket file, if this server created it
    std::string bound_path_;  // the listener's address, whoever created it
    dev_t bound_dev_ = 0;
    ino_t bound_ino_ = 0;
    std::vector<Client> clients_;
    ClientId next_id_ = 1;
};

}  // namespace cfs::supervisor
