#include "common/unique_fd.h"
#include "supervisor/control_server.h"
#include "supervisor/hold_device.h"
#include "supervisor/status.h"

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace cfs;
using namespace cfs::supervisor;

namespace {

StatusSnapshot sample() {
    StatusSnapshot s;
    s.version = "0.1.0";
    s.state = "serving";
    s.uptime_s = 3725;
    s.cache_dir = "/var/cache/cfs";
    s.cache_tag = "cfs";
    s.cache_room = StatusSnapshot::CacheRoom{42.25, 97.0};
    s.cull_below_percent = 7;
    s.cull_until_percent = 10;
    s.refuse_below_percent = 3;
    s.blob_dir = "/blobs";
    s.device_origin = "bound by this instance";
    s.in_fd_store = true;
    s.workers_wanted = 1;
    s.spares_wanted = 1;
    s.workers.push_back(WorkerStatus{0, 1234, "serving", 61, 2, 1, "killed by signal 9 (Killed)", std::nullopt,
                                     ServedFigures{3, 1, 40, 0, 3 << 20, 40, 110, 900, 2500}, true});
    s.workers.push_back(WorkerStatus{1, -1, "absent", 0, 5, 4, "killed by signal 6 (Aborted)", 1.5, {}, true});
    s.objects_per_volume["erofs,img\"a"] = 2;
    s.failovers = 3;
    s.last_recovery_ms = 57;
    return s;
}

std::string temp_socket_path() {
    return "/tmp/cfs-control-test-" + std::to_string(::getpid()) + ".sock";
}

// The address of the socket file `path`.
sockaddr_un unix_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

// A client's SOCK_SEQPACKET socket (with `flags` such as SOCK_NONBLOCK) connected to
// `path`; -1 when that fails. No assertion here: a forked child calls it too.
int connect_client(const std::string& path, int flags = 0) {
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags, 0);
    if (fd < 0) return -1;
    const sockaddr_un addr = unix_address(path);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return fd;
    ::close(fd);
    return -1;
}

// Connects, sends `request`, returns the whole reply datagram ("" if none).
std::string ask(const std::string& path, const std::string& request) {
    const int fd = connect_client(path);
    if (fd < 0) return "connect failed";
    (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string reply(4096, '\0');
    const ssize_t n = ::recv(fd, reply.data(), reply.size(), 0);
    ::close(fd);
    reply.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return reply;
}

}  // namespace

TEST_CASE("status: text names the state, the binding, every worker and the objects") {
    const auto text = render_text(sample());
    CHECK(text.find("cfsupervisor 0.1.0 - serving") == 0);
    CHECK(text.find("Uptime: 1h 2min") != std::string::npos);
    CHECK(text.find("/var/cache/cfs (tag cfs), device bound by this instance, copy in systemd's fd store") !=
          std::string::npos);
    CHECK(text.find("Failovers: 3 (last recovery 57 ms)") != std::string::npos);
    CHECK(text.find("Cache room: 42.2% of blocks free, 97.0% of files; culls below 7% up to 10%; writes refused "
                    "below 3%\n") != std::string::npos);
    auto unknown = sample();
    unknown.cache_room->files_free.reset();
    unknown.refuse_below_percent.reset();
    CHECK(render_text(unknown).find("Cache room: 42.2% of blocks free; culls below 7% up to 10%; writes refused "
                                    "below the limit it was bound with\n") != std::string::npos);
    unknown.cache_room.reset();
    CHECK(render_text(unknown).find("Cache room: unknown (statvfs failed);") != std::string::npos);
    CHECK(text.find("pid 1234") != std::string::npos);
    CHECK(text.find("restarts 5, 4 failures in a row, last exit: killed by signal 6 (Aborted), restarts in 1.5s") !=
          std::string::npos);
    CHECK(text.find("Objects: 2 open") != std::string::npos);
}

TEST_CASE("status: JSON has the documented fields and escapes strings") {
    const auto json = render_json(sample());
    CHECK(json.find("{\"schema\":1,\"version\":\"0.1.0\",\"state\":\"serving\",\"uptime_s\":3725.000,") == 0);
    CHECK(json.find("\"in_fd_store\":true,\"free_blocks_percent\":42.2,\"free_files_percent\":97.0,"
                    "\"cull_below_percent\":7,\"cull_until_percent\":10,\"refuse_below_percent\":3},") !=
          std::string::npos);
    CHECK(json.find("\"failovers\":3,\"last_recovery_ms\":57,") != std::string::npos);
    CHECK(json.find("{\"id\":1,\"pid\":null,\"state\":\"absent\"") != std::string::npos);
    CHECK(json.find("\"restart_in_s\":1.500") != std::string::npos);
    // Volume keys are made printable first (kmsg::printable: '"' becomes \x22).
    CHECK(json.find("\"objects\":{\"erofs,img\\\\x22a\":2}") != std::string::npos);
    auto s = sample();
    s.last_recovery_ms.reset();
    s.cache_room.reset();
    s.refuse_below_percent.reset();
    CHECK(render_json(s).find("\"last_recovery_ms\":null") != std::string::npos);
    CHECK(render_json(s).find("\"free_blocks_percent\":null,\"free_files_percent\":null,\"cull_below_percent\":7,"
                              "\"cull_until_percent\":10,\"refuse_below_percent\":null}") != std::string::npos);
}

TEST_CASE("status: JSON keeps UTF-8 as it is and turns bytes that are no UTF-8 into U+FFFD") {
    auto s = sample();
    s.cache_dir = "/srv/cach\xc3\xa9";  // "caché"
    s.blob_dir = "/srv/bad\xff\x01";
    const auto json = render_json(s);
    CHECK(json.find("\"dir\":\"/srv/cach\xc3\xa9\"") != std::string::npos);
    CHECK(json.find("\"blob_dir\":\"/srv/bad\xef\xbf\xbd\\u0001\"") != std::string::npos);
}

TEST_CASE("status: copies handed to spares, objects asked for, and what each worker holds") {
    auto s = sample();
    s.objects_shared = 12;
    s.object_queries = 3;
    s.workers[0].objects_held = 2;
    const auto text = render_text(s);
    CHECK(text.find("Objects: 2 open; 12 handed to spares ahead of need, 3 asked for (ObjectQuery)") !=
          std::string::npos);
    CHECK(text.find("served 44 requests, 3.0 MiB, holds 2 object(s)") != std::string::npos);
    // Nothing held without a process.
    CHECK(text.find("holds 0 object(s)") == std::string::npos);
    const auto json = render_json(s);
    CHECK(json.find("{\"id\":0,\"pid\":1234,\"state\":\"serving\",\"objects_held\":2,") != std::string::npos);
    CHECK(json.find("{\"id\":1,\"pid\":null,\"state\":\"absent\",\"objects_held\":0,") != std::string::npos);
    CHECK(json.find(",\"objects_shared\":12,\"object_queries\":3}\n") != std::string::npos);
}

TEST_CASE("control server: answers root, bounds requests, refuses others") {
    if (::geteuid() != 0) {
        MESSAGE("needs root (CI runs as root): SO_PEERCRED checks and setuid");
        return;
    }
    const auto path = temp_socket_path();
    auto server = ControlServer::create(path, std::nullopt);
    REQUIRE_MESSAGE(server.ok(), server.error().message());
    const ControlServer::Handler handler = [](std::string_view command, bool admin) {
        if (command == "huge") return ControlReply{control::Code::ok, std::string(300 * 1024, 'x')};
        return ControlReply{control::Code::ok, std::string(command) + (admin ? " admin" : " reader")};
    };
    // The client runs in a child: the server side is served here, in between.
    auto exchange = [&](const std::string& request, uid_t as_uid, gid_t as_gid) {
        int pipefd[2];
        REQUIRE(::pipe(pipefd) == 0);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::close(pipefd[0]);
            if (as_uid != 0 && (::setgroups(0, nullptr) < 0 || ::setgid(as_gid) < 0 || ::setuid(as_uid) < 0))
                ::_exit(3);
            const auto reply = ask(path, request);
            (void)!::write(pipefd[1], reply.data(), reply.size());
            ::_exit(0);
        }
        ::close(pipefd[1]);
        for (int i = 0; i < 200; ++i) {
            for (int fd : server->accept_clients()) {
                for (int k = 0; k < 200; ++k) {
                    server->serve(fd, handler);
                    if (!server->next_deadline()) break;
                    ::usleep(5000);
                }
            }
            int status = 0;
            if (::waitpid(child, &status, WNOHANG) == child) break;
            ::usleep(5000);
        }
        std::string out(8192, '\0');
        const ssize_t n = ::read(pipefd[0], out.data(), out.size());
        ::close(pipefd[0]);
        out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        return out;
    };
    CHECK(exchange("status", 0, 0) == "0\nstatus admin");
    CHECK(exchange(std::string(control::kMaxRequest + 10, 'x'), 0, 0).find("1\nrequest longer than") == 0);
    // An answer too long for one reply is an error that says so, never cut short.
    CHECK(exchange("huge", 0, 0).find("1\nthe answer is 307202 bytes, more than one reply") == 0);
    // The socket file's mode (0600, or 0660 with a group) already keeps others out;
    // the server's own check must hold even where the mode is wider.
    REQUIRE(::chmod(path.c_str(), 0666) == 0);
    CHECK(exchange("status", 65534, 65534).find("4\npermission denied") == 0);
    // A member of the control group by its primary group alone (no supplementary
    // groups) may read.
    REQUIRE(server->set_group(gid_t{4242}).ok());
    REQUIRE(::chmod(path.c_str(), 0666) == 0);
    CHECK(exchange("status", 65534, 4242) == "0\nstatus reader");
    CHECK(exchange("status", 65534, 65534).find("4\npermission denied") == 0);
    ::unlink(path.c_str());
}

TEST_CASE("control server: a crowd of connections from a reader cannot push out root's") {
    if (::geteuid() != 0) {
        MESSAGE("needs root (CI runs as root): connections from another uid");
        return;
    }
    const auto path = temp_socket_path() + ".4";
    // As systemd's socket unit passes it: a long backlog, so one batch of accepts can
    // hold more than kMaxClients new connections.
    unique_fd listener(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    const sockaddr_un at = unix_address(path);
    ::unlink(path.c_str());
    REQUIRE(::bind(listener.get(), reinterpret_cast<const sockaddr*>(&at), sizeof at) == 0);
    REQUIRE(::listen(listener.get(), 128) == 0);
    REQUIRE(::chmod(path.c_str(), 0666) == 0);
    auto server = ControlServer::adopt(std::move(listener), gid_t{4242});
    REQUIRE_MESSAGE(server.ok(), server.error().message());
    auto connect_to = [&] { return connect_client(path); };
    // One child as uid 65534 (a member of the control group) opens `n` connections and
    // holds them until `release` closes.
    int release[2], ready[2];
    REQUIRE((::pipe(release) == 0 && ::pipe(ready) == 0));
    auto crowd = [&](int n) {
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::close(release[1]);
            const gid_t groups[] = {4242};
            if (::setgroups(1, groups) < 0 || ::setgid(65534) < 0 || ::setuid(65534) < 0) ::_exit(3);
            for (int i = 0; i < n; ++i)
                if (connect_to() < 0) ::_exit(4);
            (void)!::write(ready[1], "x", 1);
            char c;
            (void)!::read(release[0], &c, 1);
            ::_exit(0);
        }
        char c;
        REQUIRE(::read(ready[0], &c, 1) == 1);
        return child;
    };
    const pid_t first = crowd(static_cast<int>(kMaxClients));
    CHECK(server->accept_clients().size() == kMaxClients);
    const int mine = connect_to();
    REQUIRE(mine >= 0);
    const std::string request = "reload";
    REQUIRE(::send(mine, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    // Root's connection first, then more of the crowd than there is room for, all in
    // one batch.
    std::vector<int> accepted;
    const pid_t second = crowd(static_cast<int>(kMaxClients) + 4);
    for (int fd : server->accept_clients()) accepted.push_back(fd);
    REQUIRE_FALSE(accepted.empty());
    const ControlServer::Handler handler = [](std::string_view command, bool admin) {
        return ControlReply{control::Code::ok, std::string(command) + (admin ? " admin" : " reader")};
    };
    for (int fd : accepted) (void)server->serve(fd, handler);
    std::array<char, 64> reply{};
    const timeval timeout{2, 0};
    (void)::setsockopt(mine, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    const ssize_t n = ::recv(mine, reply.data(), reply.size(), 0);
    CHECK(std::string(reply.data(), n > 0 ? static_cast<std::size_t>(n) : 0) == "0\nreload admin");
    ::close(mine);
    ::close(release[1]);
    for (pid_t p : {first, second}) {
        int status = 0;
        ::waitpid(p, &status, 0);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    ::close(release[0]);
    ::close(ready[0]);
    ::close(ready[1]);
    ::unlink(path.c_str());
}

// Clients connecting as fast as they are accepted must not keep the event loop in
// accept_clients(): one call takes at most a client table's worth.
TEST_CASE("control server: one call accepts at most kMaxClients connections; the rest wait their turn") {
    const auto path = temp_socket_path() + ".accept";
    auto server = ControlServer::create(path, std::nullopt);
    REQUIRE_MESSAGE(server.ok(), server.error().message());
    std::vector<int> clients;
    for (std::size_t i = 0; i < 2 * kMaxClients; ++i) {
        const int fd = connect_client(path, SOCK_NONBLOCK);
        if (fd < 0) break;  // the backlog is full
        clients.push_back(fd);
    }
    REQUIRE(clients.size() > kMaxClients);
    CHECK(server->accept_clients().size() == kMaxClients);
    CHECK(server->accept_clients().size() == clients.size() - kMaxClients);
    for (int fd : clients) ::close(fd);
    ::unlink(path.c_str());
}

TEST_CASE("control server: a silent client is dropped at its deadline") {
    const auto path = temp_socket_path() + ".2";
    auto server = ControlServer::create(path, std::nullopt);
    REQUIRE_MESSAGE(server.ok(), server.error().message());
    const int fd = connect_client(path);
    REQUIRE(fd >= 0);
    const auto accepted = server->accept_clients();
    REQUIRE(accepted.size() == 1);
    CHECK(server->awaiting_request() == accepted);
    REQUIRE(server->next_deadline().has_value());
    CHECK(server->expire(ControlServer::Clock::now()).has_value());
    CHECK_FALSE(server->expire(*server->next_deadline()).has_value());
    CHECK(server->awaiting_request().empty());
    char c;
    CHECK(::recv(fd, &c, 1, 0) == 0);  // the server closed it
    ::close(fd);
    ::unlink(path.c_str());
}

TEST_CASE("control server: an answer put off comes later, or says it timed out at its deadline") {
    if (::geteuid() != 0) {
        MESSAGE("needs root (CI runs as root): only root may ask without a control group");
        return;
    }
    const auto path = temp_socket_path() + ".3";
    auto server = ControlServer::create(path, std::nullopt);
    REQUIRE_MESSAGE(server.ok(), server.error().message());
    auto connect_and_send = [&](const std::string& request) {
        const int fd = connect_client(path);
        REQUIRE(fd >= 0);
        REQUIRE(::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
        return fd;
    };
    auto receive = [](int fd) {
        std::string reply(4096, '\0');
        const ssize_t n = ::recv(fd, reply.data(), reply.size(), MSG_DONTWAIT);
        reply.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        return reply;
    };
    const ControlServer::Handler later = [](std::string_view, bool) {
        return ControlReply::later(std::chrono::seconds(30));
    };

    const int first = connect_and_send("restart-workers");
    const auto accepted = server->accept_clients();
    REQUIRE(accepted.size() == 1);
    const auto id = server->serve(accepted[0], later);
    REQUIRE(id.has_value());
    CHECK(receive(first).empty());  // nothing yet
    // More bytes from a client already waiting are ignored, and it keeps waiting.
    (void)::send(first, "x", 1, 0);
    CHECK_FALSE(server->serve(accepted[0], later).has_value());
    server->answer(*id, ControlReply{control::Code::ok, "restarted\n"});
    CHECK(receive(first) == "0\nrestarted\n");
    server->answer(*id, ControlReply{control::Code::ok, "twice\n"});  // gone: ignored
    ::close(first);

    const int second = connect_and_send("restart-workers");
    const auto accepted2 = server->accept_clients();
    REQUIRE(accepted2.size() == 1);
    REQUIRE(server->serve(accepted2[0], later).has_value());
    const auto deadline = server->next_deadline();
    REQUIRE(deadline.has_value());
    CHECK(*deadline > ControlServer::Clock::now() + std::chrono::seconds(20));  // the handler's 30 s, not 2 s
    CHECK_FALSE(server->expire(*deadline).has_value());
    CHECK(receive(second).find("1\nthe command did not finish in time") == 0);
    ::close(second);
    ::unlink(path.c_str());
}

// hold_device (supervisor/hold_device.h) retries the start every kHoldRetry; a client
// that connected before a retry and sent its request after must still be answered.
// (Each call once watched only the clients it had accepted itself.)
TEST_CASE("hold: a client accepted before a retry is answered after it") {
    const auto path = temp_socket_path() + ".hold";
    auto server = ControlServer::create(path, std::nullopt);
    REQUIRE_MESSAGE(server.ok(), server.error().message());
    // hold_device blocks SIGTERM, SIGINT and SIGHUP for its signalfd.
    sigset_t saved;
    REQUIRE(::sigprocmask(SIG_SETMASK, nullptr, &saved) == 0);
    const int fd = connect_client(path);
    REQUIRE(fd >= 0);

    const auto first = hold_device("the test's reason", &*server, std::chrono::milliseconds(200));
    CHECK(first.what == HoldOutcome::retry);
    CHECK(server->awaiting_request().size() == 1);  // accepted; its request has not come

    const std::string request = "status";
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    const auto second = hold_device("the test's reason", &*server, std::chrono::milliseconds(200));
    CHECK(second.what == HoldOutcome::retry);
    std::string reply(4096, '\0');
    const ssize_t n = ::recv(fd, reply.data(), reply.size(), MSG_DONTWAIT);
    REQUIRE_MESSAGE(n > 0, "no answer: the client was not watched after the retry");
    reply.resize(static_cast<std::size_t>(n));
    CHECK(reply.find("not serving: cannot start: the test's reason") != std::string::npos);
    CHECK(server->awaiting_request().empty());

    ::close(fd);
    ::unlink(path.c_str());
    REQUIRE(::sigprocmask(SIG_SETMASK, &saved, nullptr) == 0);
}

// The control socket's file removed or replaced while the daemon runs: its socket
// is reached by nobody (supervisor/control_server.h).
TEST_CASE("control server: it tells when its path no longer leads to it") {
    const auto path = temp_socket_path() + ".replaced";
    auto created = ControlServer::create(path, std::nullopt);
    REQUIRE_MESSAGE(created.ok(), created.error().message());
    CHECK(created->bound_path() == path);
    CHECK(created->reachable_at_path());

    // The file unlinked, then another socket bound there (as a socket unit restarted
    // under the running service would).
    REQUIRE(::unlink(path.c_str()) == 0);
    CHECK_FALSE(created->reachable_at_path());
    cfs::unique_fd replacement(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    REQUIRE(replacement);
    const sockaddr_un addr = unix_address(path);
    REQUIRE(::bind(replacement.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(replacement.get(), 4) == 0);
    CHECK_FALSE(created->reachable_at_path());

    // The new socket handed over (a restarted service gets it from systemd).
    auto adopted = ControlServer::adopt(std::move(replacement), std::nullopt);
    REQUIRE_MESSAGE(adopted.ok(), adopted.error().message());
    CHECK(adopted->bound_path() == path);
    CHECK(adopted->reachable_at_path());
    ::unlink(path.c_str());
    CHECK_FALSE(adopted->reachable_at_path());

    // A socket with no file (abstract): nothing to lose, never reported.
    cfs::unique_fd abstract(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un abstract_addr{};
    abstract_addr.sun_family = AF_UNIX;
    const std::string name = "cfs-control-test-abstract-" + std::to_string(::getpid());
    std::memcpy(abstract_addr.sun_path + 1, name.data(), name.size());
    REQUIRE(::bind(abstract.get(), reinterpret_cast<const sockaddr*>(&abstract_addr),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())) == 0);
    REQUIRE(::listen(abstract.get(), 4) == 0);
    auto unnamed = ControlServer::adopt(std::move(abstract), std::nullopt);
    REQUIRE_MESSAGE(unnamed.ok(), unnamed.error().message());
    CHECK(unnamed->bound_path().empty());
    CHECK(unnamed->reachable_at_path());
}
