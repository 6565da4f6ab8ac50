#include "common/fd_passing.h"

#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

using cfs::kMaxFdsPerMessage;
using cfs::receive_message;
using cfs::send_message;
using cfs::unique_fd;

struct SocketPair {
    unique_fd a, b;
};

SocketPair seqpacket_pair(int extra_flags = 0) {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | extra_flags, 0, sv) == 0);
    return {unique_fd(sv[0]), unique_fd(sv[1])};
}

struct Pipe {
    unique_fd read, write;
};

Pipe make_pipe() {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    return {unique_fd(p[0]), unique_fd(p[1])};
}

// Open descriptors of this process (the directory stream's own fd included, which is
// the same for every call).
int open_fd_count() {
    DIR* d = ::opendir("/proc/self/fd");
    REQUIRE(d != nullptr);
    int n = 0;
    while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n;
}

std::span<const std::byte> bytes_of(std::string_view s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

// Sends `data` and `fds` with a raw sendmsg, bypassing send_message's own limit.
void raw_send_fds(int sock, std::string_view data, const std::vector<int>& fds) {
    iovec iov{const_cast<char*>(data.data()), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    REQUIRE(::sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(data.size()));
}

bool has_cloexec(int fd) {
    const int flags = ::fcntl(fd, F_GETFD);
    REQUIRE(flags >= 0);
    return (flags & FD_CLOEXEC) != 0;
}

}  // namespace

TEST_CASE("fd passing: data and two fds arrive, close-on-exec, referring to the same files") {
    auto sp = seqpacket_pair();
    auto p1 = make_pipe();
    auto p2 = make_pipe();
    const int fds[] = {p1.read.get(), p2.write.get()};
    REQUIRE(send_message(sp.a.get(), bytes_of(std::string_view("hello\0world", 11)), fds).ok());

    std::array<std::byte, 64> buffer{};
    auto r = receive_message(sp.b.get(), buffer, 2);
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->size == 11);
    CHECK(std::memcmp(buffer.data(), "hello\0world", 11) == 0);
    REQUIRE(r->fds.size() == 2);
    for (const auto& fd : r->fds) {
        CHECK(fd.valid());
        CHECK(fd.get() != p1.read.get());
        CHECK(fd.get() != p2.write.get());
        CHECK(has_cloexec(fd.get()));
    }
    // First fd is p1's read end: what we write into p1 comes out of it.
    REQUIRE(::write(p1.write.get(), "abc", 3) == 3);
    char got[8] = {};
    REQUIRE(::read(r->fds[0].get(), got, sizeof got) == 3);
    CHECK(std::string_view(got, 3) == "abc");
    // Second fd is p2's write end: what we write through it comes out of p2.
    REQUIRE(::write(r->fds[1].get(), "xyz!", 4) == 4);
    REQUIRE(::read(p2.read.get(), got, sizeof got) == 4);
    CHECK(std::string_view(got, 4) == "xyz!");
}

TEST_CASE("fd passing: a message without fds") {
    auto sp = seqpacket_pair();
    REQUIRE(send_message(sp.a.get(), bytes_of("ping"), {}).ok());
    std::array<std::byte, 16> buffer{};
    auto r = receive_message(sp.b.get(), buffer, 0);
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->size == 4);
    CHECK(r->fds.empty());
}

TEST_CASE("fd passing: kMaxFdsPerMessage fds is the sending limit") {
    auto sp = seqpacket_pair(SOCK_NONBLOCK);
    auto p = make_pipe();
    std::vector<int> fds(kMaxFdsPerMessage, p.read.get());
    REQUIRE(send_message(sp.a.get(), bytes_of("max"), fds).ok());
    std::array<std::byte, 16> buffer{};
    {
        auto r = receive_message(sp.b.get(), buffer, kMaxFdsPerMessage);
        REQUIRE_MESSAGE(r.ok(), r.error().message());
        CHECK(r->fds.size() == kMaxFdsPerMessage);
    }

    fds.push_back(p.read.get());
    auto sent = send_message(sp.a.get(), bytes_of("too many"), fds);
    REQUIRE_FALSE(sent.ok());
    CHECK(sent.error().message().find("refusing to send 5 fds") != std::string::npos);
    // Nothing went out.
    auto r = receive_message(sp.b.get(), buffer, kMaxFdsPerMessage);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().errnum == EAGAIN);
}

TEST_CASE("fd passing: more fds than allowed is an error and every fd is closed") {
    auto sp = seqpacket_pair();
    auto p = make_pipe();
    const int before = open_fd_count();
    const int fds[] = {p.read.get(), p.write.get(), p.read.get()};
    REQUIRE(send_message(sp.a.get(), bytes_of("x"), fds).ok());
    std::array<std::byte, 16> buffer{};
    auto r = receive_message(sp.b.get(), buffer, 2);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("peer sent 3 fds where at most 2 are allowed") != std::string::npos);
    CHECK(open_fd_count() == before);
}

TEST_CASE("fd passing: fds on a message that may carry none are closed") {
    auto sp = seqpacket_pair();
    auto p = make_pipe();
    const int before = open_fd_count();
    const int fds[] = {p.read.get()};
    REQUIRE(send_message(sp.a.get(), bytes_of("x"), fds).ok());
    std::array<std::byte, 16> buffer{};
    auto r = receive_message(sp.b.get(), buffer, 0);
    REQUIRE_FALSE(r.ok());
    CHECK(open_fd_count() == before);
}

TEST_CASE("fd passing: an fd flood beyond the control buffer is an error and nothing leaks") {
    auto sp = seqpacket_pair();
    auto p = make_pipe();
    const int before = open_fd_count();
    raw_send_fds(sp.a.get(), "flood", std::vector<int>(40, p.read.get()));
    std::array<std::byte, 16> buffer{};
    auto r = receive_message(sp.b.get(), buffer, kMaxFdsPerMessage);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("more control data") != std::string::npos);
    CHECK(open_fd_count() == before);
}

TEST_CASE("fd passing: a message larger than the buffer is an error and its fds are closed") {
    auto sp = seqpacket_pair();
    auto p = make_pipe();
    const int before = open_fd_count();
    const std::string big(100, 'b');
    const int fds[] = {p.read.get()};
    REQUIRE(send_message(sp.a.get(), bytes_of(big), fds).ok());
    std::array<std::byte, 10> buffer{};
    auto r = receive_message(sp.b.get(), buffer, 1);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "peer sent a message larger than 10 bytes");
    CHECK(open_fd_count() == before);
}

TEST_CASE("fd passing: a message exactly the buffer size is accepted") {
    auto sp = seqpacket_pair();
    REQUIRE(send_message(sp.a.get(), bytes_of("0123456789"), {}).ok());
    std::array<std::byte, 10> buffer{};
    auto r = receive_message(sp.b.get(), buffer, 0);
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->size == 10);
}

TEST_CASE("fd passing: peer closed gives size 0") {
    auto sp = seqpacket_pair();
    sp.a.reset();
    std::array<std::byte, 16> buffer{};
    auto r = receive_message(sp.b.get(), buffer, kMaxFdsPerMessage);
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->size == 0);
    CHECK(r->fds.empty());
}

TEST_CASE("fd passing: an empty non-blocking socket gives EAGAIN") {
    auto sp = seqpacket_pair(SOCK_NONBLOCK);
    std::array<std::byte, 16> buffer{};
    auto r = receive_message(sp.b.get(), buffer, kMaxFdsPerMessage);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().errnum == EAGAIN);
}

TEST_CASE("fd passing: SCM_CREDENTIALS is rejected as foreign control data") {
    auto sp = seqpacket_pair();
    const int on = 1;
    REQUIRE(::setsockopt(sp.b.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
    auto p = make_pipe();
    const int before = open_fd_count();
    SUBCASE("without fds") {
        REQUIRE(send_message(sp.a.get(), bytes_of("cred"), {}).ok());
    }
    SUBCASE("with an fd, which is closed") {
        const int fds[] = {p.read.get()};
        REQUIRE(send_message(sp.a.get(), bytes_of("cred"), fds).ok());
    }
    std::array<std::byte, 16> buffer{};
    auto r = receive_message(sp.b.get(), buffer, kMaxFdsPerMessage);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "peer sent control data other than SCM_RIGHTS");
    CHECK(open_fd_count() == before);
}

TEST_CASE("fd passing: sending to a closed peer fails with EPIPE, no SIGPIPE") {
    auto sp = seqpacket_pair();
    sp.b.reset();
    auto sent = send_message(sp.a.get(), bytes_of("x"), {});
    REQUIRE_FALSE(sent.ok());
    CHECK(sent.error().errnum == EPIPE);
}
