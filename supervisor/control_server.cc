#include "supervisor/control_server.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "common/log.h"
#include "supervisor/nss_lookup.h"

namespace cfs::supervisor {
namespace {

Status check_listener(int fd) {
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) return sys_error("inspecting the control socket");
    len = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
        return sys_error("inspecting the control socket");
    if (type != SOCK_SEQPACKET || !listening)
        return logic_error("the control socket systemd passed is not a listening SOCK_SEQPACKET socket "
                           "(cfsupervisor.socket needs ListenSequentialPacket=)");
    return {};
}

}  // namespace

Result<ControlServer> ControlServer::adopt(unique_fd listener, std::optional<gid_t> group) {
    if (auto ok = check_listener(listener.get()); !ok) return std::move(ok).error();
    // systemd passes it blocking; accept_clients drains it until EAGAIN.
    const int flags = ::fcntl(listener.get(), F_GETFL);
    if (flags < 0 || ::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK) < 0)
        return sys_error("making the control socket non-blocking");
    return ControlServer(std::move(listener), group);
}

namespace {

// The socket file to `group` (root's own without one), mode 0660 (0600). The unit
// grants no CAP_CHOWN, but an owner may give its file to a group it is in: for the
// chown the filesystem gid (CAP_SETGID) is that group.
Status give_to_group(const std::string& path, std::optional<gid_t> group) {
    const gid_t gid = group.value_or(0);
    const auto previous = static_cast<gid_t>(::setfsgid(gid));
    const int chowned = ::chown(path.c_str(), static_cast<uid_t>(-1), gid);
    const int err = errno;
    (void)::setfsgid(previous);
    if (chowned < 0) return sys_error(err, fmt::format("giving {} to group {}", path, gid));
    if (::chmod(path.c_str(), group ? 0660 : 0600) < 0) return sys_error(fmt::format("setting the mode of {}", path));
    return {};
}

}  // namespace

Result<ControlServer> ControlServer::create(const std::string& path, std::optional<gid_t> group) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        return logic_error(fmt::format("control socket path {} is longer than {} bytes", path, sizeof addr.sun_path - 1));
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (const auto slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
        const std::string dir = path.substr(0, slash);
        if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) return sys_error(fmt::format("creating {}", dir));
    }
    unique_fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return sys_error("creating the control socket");
    // A socket file left by an earlier instance would make bind fail with EADDRINUSE.
    (void)::unlink(path.c_str());
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0)
        return sys_error(fmt::format("binding the control socket {}", path));
    if (auto given = give_to_group(path, group); !given) return std::move(given).error();
    if (::listen(fd.get(), 16) < 0) return sys_error(fmt::format("listening on {}", path));
    return ControlServer(std::move(fd), group, path);
}

Result<std::optional<gid_t>> ControlServer::resolve_group(const std::string& name) {
    if (name.empty()) return std::optional<gid_t>{};
    group grp{}, *found = nullptr;
    // A group with many members (a directory service's) needs more than a page.
    std::vector<char> buffer(4096);
    const int rc = lookup_growing_buffer(buffer, std::size_t{1} << 22, [&](char* room, std::size_t size) {
        return ::getgrnam_r(name.c_str(), &grp, room, size, &found);
    });
    if (rc != 0) return sys_error(rc, fmt::format("looking up the control group \"{}\" (control.group)", name));
    if (found == nullptr)
        return logic_error(fmt::format("the control group \"{}\" (control.group) does not exist", name));
    return std::optional<gid_t>{grp.gr_gid};
}

Status ControlServer::set_group(std::optional<gid_t> group) {
    if (!path_.empty())
        if (auto given = give_to_group(path_, group); !given) return given;
    group_ = group;
    return {};
}

std::vector<int> ControlServer::accept_clients() {
    std::vector<int> added;
    unsigned dropped = 0;  // one warning per batch, not one per connection
    // At most one client table's worth per call: clients that connect as fast as we
    // accept would keep the loop here, and failovers and the watchdog wait behind it.
    // The listener is level-triggered, so the rest come at the next wake-up.
    for (std::size_t accepted = 0; accepted < kMaxClients; ++accepted) {
        unique_fd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!client) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log::warning("{}", sys_error("accepting a control connection").message());
            return added;
        }
        if (clients_.size() >= kMaxClients) {
            // Busy: the oldest waiter is the likeliest to be stuck. One waiting for a
            // command to finish is not stuck, so it goes last, and root's go after
            // everyone else's: a reader of status who keeps connecting must not push
            // out root's `reload`.
            auto victim = clients_.end();
            for (const bool spare_root : {true, false}) {
                victim = std::find_if(clients_.begin(), clients_.end(), [&](const Client& c) {
                    return !c.answer_pending && !(spare_root && c.root);
                });
                if (victim != clients_.end()) break;
            }
            if (victim == clients_.end()) victim = clients_.begin();
            if (dropped++ == 0) log::warning("control socket: {} clients waiting; dropping the oldest", clients_.size());
            std::erase(added, victim->fd.get());
            clients_.erase(victim);
        }
        ucred peer{};
        socklen_t len = sizeof peer;
        const bool root = ::getsockopt(client.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0 && peer.uid == 0;
        added.push_back(client.get());
        clients_.push_back(Client{std::move(client), Clock::now() + kClientTimeout, next_id_++, false, root});
    }
    return added;
}

bool ControlServer::may_read(int fd, const ucred& peer) const {
    if (peer.uid == 0) return true;
    if (!group_) return false;
    // SO_PEERCRED has the primary group; SO_PEERGROUPS the supplementary ones, as
    // many as the peer has (ERANGE says how many bytes they need).
    if (peer.gid == *group_) return true;
    std::vector<gid_t> groups(256);
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    while (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) < 0) {
        if (errno != ERANGE || len <= groups.size() * sizeof(gid_t)) return false;
        groups.resize(len / sizeof(gid_t));
    }
    const auto n = len / sizeof(gid_t);
    return std::find(groups.begin(), groups.begin() + n, *group_) != groups.begin() + n;
}

namespace {

bool send_datagram(int client_fd, const std::string& datagram) {
    // Non-blocking: a client that does not read loses its answer, not our time.
    return ::send(client_fd, datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0;
}

void send_reply(int client_fd, const ControlReply& reply) {
    const std::string datagram = fmt::format("{}\n{}", static_cast<int>(reply.code), reply.text);
    // One datagram holds at most kMaxResponse, and the socket's send buffer (EMSGSIZE):
    // an answer cut short would be wrong (JSON cut mid-way), so it becomes an error
    // that says why.
    if (datagram.size() <= control::kMaxResponse && send_datagram(client_fd, datagram)) return;
    if (datagram.size() <= control::kMaxResponse && errno != EMSGSIZE) {
        log::debug("{}", sys_error("answering a control client").message());
        return;
    }
    log::warning("control socket: an answer of {} bytes is more than one reply can carry; the client is told so",
                 datagram.size());
    (void)send_datagram(client_fd, fmt::format("{}\nthe answer is {} bytes, more than one reply of the control "
                                               "socket can carry\n",
                                               static_cast<int>(control::Code::failed), datagram.size()));
}

}  // namespace

std::optional<ControlServer::ClientId> ControlServer::serve(int client_fd, const Handler& handler) {
    auto it = std::find_if(clients_.begin(), clients_.end(), [&](const Client& c) { return c.fd.get() == client_fd; });
    if (it == clients_.end()) return std::nullopt;
    std::array<char, control::kMaxRequest + 1> request{};
    const ssize_t n = ::recv(client_fd, request.data(), request.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return std::nullopt;  // spurious wakeup; the deadline still holds
    ControlReply reply;
    ucred peer{};
    socklen_t len = sizeof peer;
    if (n <= 0) {
        clients_.erase(it);  // gone, or an error: nothing to answer
        return std::nullopt;
    }
    if (it->answer_pending) return std::nullopt;  // one request per connection; the rest is ignored
    if (::getsockopt(client_fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0) {
        reply = {control::Code::failed, "cannot identify you (SO_PEERCRED failed)\n"};
    } else if (static_cast<std::size_t>(n) > control::kMaxRequest) {
        reply = {control::Code::failed, fmt::format("request longer than {} bytes\n", control::kMaxRequest)};
    } else if (!may_read(client_fd, peer)) {
        log::info("control socket: refused uid {} (pid {}): not root and not in the control group", peer.uid,
                  peer.pid);
        reply = {control::Code::denied, "permission denied: only root and members of the control group "
                                        "(control.group) may ask the supervisor\n"};
    } else {
        const std::string_view command(request.data(), static_cast<std::size_t>(n));
        reply = handler(command, peer.uid == 0);
    }
    if (reply.answer_within) {
        it->answer_pending = true;
        it->deadline = Clock::now() + *reply.answer_within;
        return it->id;
    }
    send_reply(client_fd, reply);
    clients_.erase(it);
    return std::nullopt;
}

void ControlServer::answer(ClientId client, const ControlReply& reply) {
    auto it = std::find_if(clients_.begin(), clients_.end(), [&](const Client& c) { return c.id == client; });
    if (it == clients_.end() || !it->answer_pending) return;
    send_reply(it->fd.get(), reply);
    clients_.erase(it);
}

std::optional<ControlServer::Clock::time_point> ControlServer::expire(Clock::time_point now) {
    std::erase_if(clients_, [now](const Client& c) {
        if (c.deadline > now) return false;
        if (c.answer_pending)
            send_reply(c.fd.get(), {control::Code::failed,
                                    "the command did not finish in time; see `cfsupervisor status` and the log\n"});
        return true;
    });
    return next_deadline();
}

void ControlServer::note_bound_path() {
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    struct stat st {};
    // An abstract or unnamed socket has no file to lose.
    if (::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) < 0 ||
        len <= offsetof(sockaddr_un, sun_path) || addr.sun_path[0] == '\0')
        return;
    const std::string path(addr.sun_path, ::strnlen(addr.sun_path, len - offsetof(sockaddr_un, sun_path)));
    if (::stat(path.c_str(), &st) < 0 || !S_ISSOCK(st.st_mode)) return;
    bound_path_ = path;
    bound_dev_ = st.st_dev;
    bound_ino_ = st.st_ino;
}

bool ControlServer::reachable_at_path() const {
    if (bound_path_.empty()) return true;
    struct stat st {};
    if (::stat(bound_path_.c_str(), &st) < 0) return errno != ENOENT && errno != ENOTDIR;
    return st.st_dev == bound_dev_ && st.st_ino == bound_ino_;
}

std::vector<int> ControlServer::awaiting_request() const {
    std::vector<int> fds;
    for (const auto& c : clients_)
        if (!c.answer_pending) fds.push_back(c.fd.get());
    return fds;
}

std::optional<ControlServer::Clock::time_point> ControlServer::next_deadline() const {
    std::optional<Clock::time_point> next;
    for (const auto& c : clients_)
        if (!next || c.deadline < *next) next = c.deadline;
    return next;
}

}  // namespace cfs::supervisor
