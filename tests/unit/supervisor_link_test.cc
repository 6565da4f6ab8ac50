// The worker's end of the supervisor socket (worker/supervisor_link.h) on a real
// socketpair: what arrives unasked (ObjectForget, ObjectShare) reaches its handler,
// before or while the worker waits for an answer.
#include "tests/unit/test_fds.h"
#include "worker/supervisor_link.h"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/fd_passing.h"
#include "common/worker_protocol.h"

namespace {

using namespace cfs;
using namespace cfs::worker;

using cfs::testing::make_memfd;
using cfs::testing::same_file;

struct LinkFixture {
    unique_fd supervisor_end;
    unique_fd worker_end;
    std::vector<std::uint32_t> forgotten;
    std::vector<SharedObject> shared;
    std::optional<SocketSupervisorLink> link;

    LinkFixture() {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
        supervisor_end = unique_fd(sv[0]);
        worker_end = unique_fd(sv[1]);
        link.emplace(
            worker_end.get(), [this](std::uint32_t id) { forgotten.push_back(id); },
            [this](SharedObject o) { shared.push_back(std::move(o)); });
    }

    // The supervisor sends `m` with `fds`.
    void say(const wire::Message& m, std::span<const int> fds = {}) {
        REQUIRE(send_message(supervisor_end.get(), wire::encode(m), fds).ok());
    }

    // What the worker sent, decoded.
    wire::Message heard() {
        std::array<std::byte, wire::kMaxMessageSize> buffer{};
        auto r = receive_message(supervisor_end.get(), buffer, kMaxFdsPerMessage);
        REQUIRE_MESSAGE(r.ok(), r.error().message());
        auto m = wire::decode(std::span(buffer).first(r->size), r->fds.size());
        REQUIRE_MESSAGE(m.ok(), m.error().message());
        return *m;
    }
};

wire::ObjectShare share_of(std::uint32_t id, const std::string& blob) {
    wire::ObjectShare s;
    s.object_id = id;
    s.size = 8192;
    s.volume_key = "erofs,vol";
    s.cookie_key = blob;
    return s;
}

}  // namespace

TEST_CASE("supervisor link: an ObjectShare reaches the share handler with its description and fd") {
    LinkFixture f;
    unique_fd anon(make_memfd());
    const int fds[] = {anon.get()};
    f.say(share_of(7, "img_a"), fds);
    f.say(wire::ObjectForget{3});
    REQUIRE(f.link->drain_unsolicited().ok());
    REQUIRE(f.shared.size() == 1);
    CHECK(f.shared[0].description.object_id == 7);
    CHECK(f.shared[0].description.size == 8192);
    CHECK(f.shared[0].description.volume_key == "erofs,vol");
    CHECK(f.shared[0].description.cookie_key == "img_a");
    REQUIRE(f.shared[0].anon_fd.valid());
    CHECK(same_file(f.shared[0].anon_fd.get(), anon.get()));
    CHECK(f.forgotten == std::vector<std::uint32_t>{3});
    CHECK_FALSE(f.link->control_pending());
}

TEST_CASE("supervisor link: an ObjectShare that comes before the answer to ObjectQuery is handled, then the answer") {
    LinkFixture f;
    unique_fd shared_anon(make_memfd()), answered_anon(make_memfd());
    const int share_fds[] = {shared_anon.get()};
    const int info_fds[] = {answered_anon.get()};
    // Already in the socket when the worker asks: the supervisor sent the share first.
    f.say(share_of(8, "img_b"), share_fds);
    wire::ObjectInfo info;
    static_cast<wire::ObjectDescription&>(info) = share_of(9, "img_c");
    f.say(info, info_fds);
    auto got = f.link->query_object(9);
    REQUIRE_MESSAGE(got.ok(), got.error().message());
    REQUIRE(got->has_value());
    CHECK((*got)->description.object_id == 9);
    CHECK(same_file((*got)->anon_fd.get(), answered_anon.get()));
    REQUIRE(f.shared.size() == 1);
    CHECK(f.shared[0].description.object_id == 8);
    CHECK(same_file(f.shared[0].anon_fd.get(), shared_anon.get()));
    auto asked = f.heard();
    REQUIRE(std::holds_alternative<wire::ObjectQuery>(asked));
    CHECK(std::get<wire::ObjectQuery>(asked).object_id == 9);
}

TEST_CASE("supervisor link: an ObjectShare without its fd breaks the link") {
    LinkFixture f;
    f.say(share_of(7, "img_a"));  // no fd
    auto r = f.link->drain_unsolicited();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("carries 0 fds, expected 1") != std::string::npos);
    CHECK(f.shared.empty());
}

TEST_CASE("supervisor link: a send to a full socket waits for the supervisor to read, instead of failing") {
    LinkFixture f;
    unsigned queued = 0;
    for (;;) {
        auto sent = send_message(f.worker_end.get(), wire::encode(wire::ObjectClosed{1}), {});
        if (!sent) {
            REQUIRE(sent.error().errnum == EAGAIN);
            break;
        }
        ++queued;
        REQUIRE(queued < 100000);
    }
    // The supervisor reads them a moment later, while the worker's send waits.
    std::thread supervisor([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        for (unsigned i = 0; i < queued; ++i) (void)f.heard();
    });
    const auto sent = f.link->send(wire::ObjectClosed{2});
    supervisor.join();
    REQUIRE_MESSAGE(sent.ok(), sent.error().message());
    const auto last = f.heard();
    REQUIRE(std::holds_alternative<wire::ObjectClosed>(last));
    CHECK(std::get<wire::ObjectClosed>(last).object_id == 2);
}
