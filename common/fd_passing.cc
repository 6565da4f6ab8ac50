#include "common/fd_passing.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace cfs {
namespace {
// Room for more fds than we accept, so an over-supply is seen (and closed) rather than
// silently truncated by the kernel.
constexpr std::size_t kControlFds = kMaxFdsPerMessage * 4;
union ControlBuffer {
    char buf[CMSG_SPACE(sizeof(int) * kControlFds)];
    cmsghdr align;
};
}  // namespace

Status send_message(int sock, std::span<const std::byte> data, std::span<const int> fds) {
    if (fds.size() > kMaxFdsPerMessage)
        return logic_error(fmt::format("refusing to send {} fds in one message", fds.size()));
    iovec iov{const_cast<std::byte*>(data.data()), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ControlBuffer control{};
    if (!fds.empty()) {
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    for (;;) {
        ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n >= 0) {
            // SOCK_SEQPACKET sends whole datagrams; a short count would be a kernel bug.
            if (static_cast<std::size_t>(n) != data.size())
                return logic_error(fmt::format("short send: {} of {} bytes", n, data.size()));
            return {};
        }
        if (errno != EINTR) return sys_error("sending a message to the peer");
    }
}

Result<ReceivedMessage> receive_message(int sock, std::span<std::byte> buffer, std::size_t max_fds) {
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ControlBuffer control{};
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return sys_error("receiving a message from the peer");

    ReceivedMessage out;
    out.size = static_cast<std::size_t>(n);
    // Take ownership of every fd first, so each error path below closes them all.
    bool foreign_control = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                out.fds.emplace_back(fd);
            }
        } else {
            foreign_control = true;
        }
    }
    if (msg.msg_flags & MSG_CTRUNC)
        return logic_error("peer sent more control data than any message may carry (fds closed)");
    if (msg.msg_flags & MSG_TRUNC)
        return logic_error(fmt::format("peer sent a message larger than {} bytes", buffer.size()));
    if (foreign_control) return logic_error("peer sent control data other than SCM_RIGHTS");
    if (out.fds.size() > max_fds)
        return logic_error(fmt::format("peer sent {} fds where at most {} are allowed (fds closed)",
                                       out.fds.size(), max_fds));
    return out;
}

}  // namespace cfs
