#include "tests/vm/tools/hostile_script.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/kernel_msg.h"
#include "common/log.h"
#include "common/worker_protocol.h"

namespace cfs::testing {
namespace {

constexpr std::string_view kScriptName = "hostile.script";
constexpr std::size_t kMaxScriptSize = 64 * 1024;
bool g_ignore_pause = false;

struct Outcome {
    std::string text;  // "ok" or an errno name
};

Outcome from_result(long result) {
    if (result >= 0) return {"ok"};
    const char* name = ::strerrorname_np(errno);
    return {name != nullptr ? name : "errno " + std::to_string(errno)};
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// Sends `bytes` with `fds` as one datagram, bypassing the project's own limits
// (common/fd_passing.h), which a compromised worker would not use.
long raw_send(int sock, std::span<const std::byte> bytes, const std::vector<int>& fds) {
    iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty()) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    return ::sendmsg(sock, &msg, MSG_NOSIGNAL);
}

std::optional<std::vector<std::byte>> parse_hex(std::string_view hex) {
    std::vector<std::byte> out;
    for (std::size_t i = 0; i < hex.size();) {
        if (hex[i] == ' ') {
            ++i;
            continue;
        }
        unsigned value = 0;
        if (i + 2 > hex.size()) return std::nullopt;
        auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, value, 16);
        if (ec != std::errc() || p != hex.data() + i + 2) return std::nullopt;
        out.push_back(static_cast<std::byte>(value));
        i += 2;
    }
    return out;
}

std::optional<unsigned> parse_count(std::string_view s) {
    unsigned n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return n;
}

// One attack. nullopt: the line is not a known attack (a broken script).
std::optional<Outcome> attack(const HostileTarget& t, std::string_view verb, std::string_view arg) {
    const std::string arg_z(arg);
    if (verb == "device") return from_result(::write(t.device, arg.data(), arg.size()));
    if (verb == "open") {
        const int fd = ::openat(AT_FDCWD, arg_z.c_str(), O_RDONLY | O_CLOEXEC);
        const Outcome o = from_result(fd);
        if (fd >= 0) ::close(fd);
        return o;
    }
    if (verb == "openat-blobs" || verb == "read-blob") {
        const int fd = ::openat(t.blob_dir, arg_z.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || verb == "openat-blobs") {
            const Outcome o = from_result(fd);
            if (fd >= 0) ::close(fd);
            return o;
        }
        char byte = 0;
        const Outcome o = from_result(::pread(fd, &byte, 1, 0));
        ::close(fd);
        return o;
    }
    if (verb == "send-hex") {
        auto bytes = parse_hex(arg);
        if (!bytes) return std::nullopt;
        return from_result(raw_send(t.supervisor_socket, *bytes, {}));
    }
    if (verb == "send-opened-with") {
        int fd = -1;
        if (arg == "device") fd = t.device;
        else if (arg == "blobs") fd = t.blob_dir;
        else if (arg == "stderr") fd = STDERR_FILENO;
        else return std::nullopt;
        wire::ObjectOpened opened;
        opened.object_id = 1;
        opened.size = 4096;
        opened.volume_key = "erofs,hostile";
        opened.cookie_key = "img_a";
        return from_result(raw_send(t.supervisor_socket, wire::encode(opened), {fd}));
    }
    if (verb == "send-fds") {
        auto n = parse_count(arg);
        if (!n) return std::nullopt;
        return from_result(raw_send(t.supervisor_socket, wire::encode(wire::Ready{}),
                                    std::vector<int>(*n, STDERR_FILENO)));
    }
    if (verb == "send-big") {
        auto n = parse_count(arg);
        if (!n) return std::nullopt;
        return from_result(raw_send(t.supervisor_socket, std::vector<std::byte>(*n, std::byte{0x41}), {}));
    }
    if (verb == "flood-query") {
        auto n = parse_count(arg);
        if (!n) return std::nullopt;
        const auto query = wire::encode(wire::ObjectQuery{1});
        for (unsigned i = 0; i < *n; ++i) {
            while (raw_send(t.supervisor_socket, query, {}) < 0) {
                if (errno != EAGAIN) return from_result(-1);
                pollfd p{t.supervisor_socket, POLLOUT, 0};
                (void)::poll(&p, 1, 100);
            }
        }
        return Outcome{"ok"};
    }
    if (verb == "connect") {
        // A TCP connection to a port of this machine: a remote worker's Landlock
        // ruleset allows only the blob servers' ports (EACCES for any other, where
        // nothing listening would say ECONNREFUSED).
        auto port = parse_count(arg);
        if (!port || *port == 0 || *port > 65535) return std::nullopt;
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) return from_result(-1);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(static_cast<std::uint16_t>(*port));
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const Outcome o = from_result(::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to));
        ::close(fd);
        return o;
    }
    if (verb == "steal-read") {
        // Reads the device as a spare never does, until it has taken a READ, which it
        // then holds unanswered: its reader waits until a `restore` delivers it again.
        auto seconds = parse_count(arg);
        if (!seconds) return std::nullopt;
        std::array<std::byte, 4096> message{};
        for (unsigned waited_ms = 0; waited_ms < *seconds * 1000; waited_ms += 10) {
            pollfd p{t.device, POLLIN, 0};
            if (::poll(&p, 1, 10) != 1) continue;
            const ssize_t n = ::read(t.device, message.data(), message.size());
            if (n <= 0) continue;
            const auto header = kmsg::peek_header(std::span(message).first(static_cast<std::size_t>(n)));
            if (header && header->opcode == static_cast<std::uint32_t>(kmsg::Opcode::read)) {
                log::warning("hostile: took a READ of object {} and holds it", header->object_id);
                return Outcome{"ok"};
            }
        }
        return Outcome{"ETIMEDOUT"};
    }
    if (verb == "ignore-pause") {
        g_ignore_pause = true;
        return Outcome{"ok"};
    }
    if (verb == "close-socket-and-hang") {
        // The supervisor finds its connection closed while this worker lives on.
        ::close(t.supervisor_socket);
        for (;;) (void)::poll(nullptr, 0, -1);
    }
    if (verb == "syscall") {
        if (arg == "socket") return from_result(::socket(AF_INET, SOCK_STREAM, 0));
        if (arg == "kill-supervisor") return from_result(::kill(t.supervisor, SIGKILL));
        if (arg == "ptrace-supervisor") return from_result(::ptrace(PTRACE_ATTACH, t.supervisor, nullptr, nullptr));
        if (arg == "execve") {
            const char* argv[] = {"/bin/sh", nullptr};
            return from_result(::execve("/bin/sh", const_cast<char* const*>(argv), nullptr));
        }
        if (arg == "fchdir-blobs") return from_result(::fchdir(t.blob_dir));
        if (arg == "mount") return from_result(::mount("none", "/", "tmpfs", 0, nullptr));
        if (arg == "setuid") return from_result(::setuid(0));
        if (arg == "unshare-user") return from_result(::unshare(CLONE_NEWUSER));
        return std::nullopt;
    }
    return std::nullopt;
}

}  // namespace

bool hostile_ignores_pause() { return g_ignore_pause; }

void run_hostile_script(const HostileTarget& t) {
    const int fd = ::openat(t.blob_dir, std::string(kScriptName).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        log::error("hostile: no {} in the blob directory: {}", kScriptName, std::strerror(errno));
        return;
    }
    std::string script(kMaxScriptSize, '\0');
    const ssize_t n = ::read(fd, script.data(), script.size());
    ::close(fd);
    if (n < 0) {
        log::error("hostile: reading {}: {}", kScriptName, std::strerror(errno));
        return;
    }
    script.resize(static_cast<std::size_t>(n));

    unsigned line_number = 0, as_expected = 0, unexpected = 0;
    std::string_view rest = script;
    while (!rest.empty()) {
        const std::size_t eol = rest.find('\n');
        const std::string_view line = trim(rest.substr(0, eol));
        rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 1);
        ++line_number;
        if (line.empty() || line.front() == '#') continue;
        const std::size_t arrow = line.find(" => ");
        if (arrow == std::string_view::npos) {
            log::error("hostile: {}:{}: no \" => <expected outcome>\"", kScriptName, line_number);
            ++unexpected;
            continue;
        }
        const std::string_view command = trim(line.substr(0, arrow));
        const std::string_view expected = trim(line.substr(arrow + 4));
        const std::size_t space = command.find(' ');
        const std::string_view verb = command.substr(0, space);
        const std::string_view arg = space == std::string_view::npos ? std::string_view{} : trim(command.substr(space + 1));
        if (expected == "dies") log::warning("hostile: {} => must end this worker", command);
        const auto got = attack(t, verb, arg);
        if (!got) {
            log::error("hostile: {}:{}: unknown attack \"{}\"", kScriptName, line_number, command);
            ++unexpected;
            continue;
        }
        const bool ok = got->text == expected;
        (ok ? as_expected : unexpected)++;
        log::warning("hostile: {} => {}, expected {}: {}", command, got->text, expected,
                     ok ? "as expected" : "UNEXPECTED");
    }
    log::warning("hostile: script done, {} as expected, {} unexpected; serving from now on", as_expected, unexpected);
}

}  // namespace cfs::testing
