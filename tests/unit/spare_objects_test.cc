// Spares stocked with anon fds ahead of need (supervisor/spare_objects.h), and the
// registry's record of who holds which copy (supervisor/object_registry.h), with the
// dispatch handlers that feed them, on real socketpairs.
#include "tests/unit/test_fds.h"
#include "tests/unit/worker_sockets.h"
#include "supervisor/spare_objects.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "common/fd_passing.h"
#include "supervisor/object_registry.h"
#include "supervisor/worker_dispatch.h"

namespace {

using namespace cfs;
using namespace cfs::supervisor;

using cfs::testing::make_memfd;
using cfs::testing::Received;
using cfs::testing::same_file;

// Slot 0 serves; the others are paused (Ready). The test holds each worker's end.
struct Fixture {
    SupervisorState state;
    std::vector<unique_fd> worker_ends;

    explicit Fixture(unsigned n = 3) : worker_ends(testing::add_worker_slots(state, n, 200000)) {
        for (unsigned i = 0; i < n; ++i) REQUIRE(dispatch(i, wire::Ready{}).ok());
        state.workers[0].state = WorkerState::serving;
        state.is_cache_anon_fd = [](int) { return true; };
        state.socket_has_room = send_queue_has_room;
    }

    WorkerSlot& worker(unsigned i) { return state.workers.at(i); }

    Status dispatch(unsigned from, const wire::Message& m, std::vector<unique_fd> fds = {}) {
        return dispatch_worker_message(state, worker(from), wire::encode(m), std::move(fds));
    }

    std::optional<Received> received(unsigned i) { return testing::receive_sent(worker_ends.at(i).get()); }

    // Worker `from` opens object `id` (and copens it unless told not to); returns the
    // fd the test kept of it.
    unique_fd open_object(unsigned from, std::uint32_t id, bool copen = true) {
        unique_fd mine(make_memfd());
        std::vector<unique_fd> fds;
        fds.emplace_back(::fcntl(mine.get(), F_DUPFD_CLOEXEC, 0));
        wire::ObjectOpened o;
        o.object_id = id;
        o.size = 4096 * id;
        o.volume_key = "erofs,vol";
        o.cookie_key = "img" + std::to_string(id);
        REQUIRE(dispatch(from, o, std::move(fds)).ok());
        auto ack = received(from);
        REQUIRE(ack.has_value());
        REQUIRE(std::holds_alternative<wire::ObjectAck>(ack->message));
        if (copen) REQUIRE(dispatch(from, wire::ObjectCopened{id}).ok());
        return mine;
    }

    // The object ids of the ObjectShares waiting for worker `i`, in order; checks each
    // came with a copy of the registry's fd and the registered description.
    std::vector<std::uint32_t> shares_to(unsigned i) {
        std::vector<std::uint32_t> ids;
        while (auto r = received(i)) {
            REQUIRE_MESSAGE(std::holds_alternative<wire::ObjectShare>(r->message),
                            wire::type_name(static_cast<std::uint32_t>(wire::type_of(r->message))));
            const auto& share = std::get<wire::ObjectShare>(r->message);
            const RegisteredObject* object = state.objects.find(share.object_id);
            REQUIRE(object != nullptr);
            REQUIRE(r->fds.size() == 1);
            CHECK(same_file(r->fds[0].get(), object->anon_fd.get()));
            CHECK(share.size == object->description.size);
            CHECK(share.cookie_key == object->description.cookie_key);
            ids.push_back(share.object_id);
        }
        return ids;
    }
};

using Ids = std::vector<std::uint32_t>;

}  // namespace

TEST_CASE("spares: a spare is stocked with every copened object it lacks, newest first, each with its fd") {
    Fixture f;
    auto a = f.open_object(0, 3), b = f.open_object(0, 5, /*copen=*/false), c = f.open_object(0, 7);
    CHECK(f.shares_to(1).empty());  // not stocked yet: nothing unasked
    REQUIRE(wants_stock(f.worker(1)));
    stock_spare(f.state, f.worker(1));
    CHECK(f.worker(1).stocked);
    CHECK_FALSE(wants_stock(f.worker(1)));
    CHECK(f.worker(1).to_share == std::deque<std::uint32_t>{7, 3});
    auto done = send_shares(f.state, f.worker(1));
    REQUIRE(done.ok());
    CHECK(*done);
    // 5 is not copened: if its opener died now, every copy would have to close before
    // `restore`, and a spare is not paused to confirm that it did.
    CHECK(f.shares_to(1) == Ids{7, 3});
    CHECK(f.worker(1).to_share.empty());
    CHECK(f.state.objects_shared == 2);
    CHECK(f.state.objects.held_by(1) == 2);
    CHECK(f.state.objects.find(7)->holders == std::set<unsigned>{0, 1});
    CHECK(f.state.objects.find(5)->holders == std::set<unsigned>{0});
    CHECK(f.shares_to(2).empty());  // slot 2 was not stocked
}

TEST_CASE("spares: an object copened later goes to stocked spares only, not to serving or unstocked workers") {
    Fixture f(4);
    stock_spare(f.state, f.worker(1));
    stock_spare(f.state, f.worker(3));
    f.worker(3).state = WorkerState::serving;  // resumed since (its Resume clears stocked too)
    auto a = f.open_object(0, 9);
    CHECK(f.worker(1).to_share == std::deque<std::uint32_t>{9});
    CHECK(f.worker(2).to_share.empty());
    CHECK(f.worker(3).to_share.empty());
    // An OPEN not yet copened is not shared; its ObjectCopened shares it.
    auto b = f.open_object(3, 11, /*copen=*/false);
    CHECK(f.worker(1).to_share == std::deque<std::uint32_t>{9});
    REQUIRE(f.dispatch(3, wire::ObjectCopened{11}).ok());
    CHECK(f.worker(1).to_share == std::deque<std::uint32_t>{9, 11});
    REQUIRE(send_shares(f.state, f.worker(1)).ok());
    CHECK(f.shares_to(1) == Ids{9, 11});
}

TEST_CASE("spares: an object closed after it was queued is never sent, so no copy follows its ObjectForget") {
    Fixture f;
    auto a = f.open_object(0, 4), b = f.open_object(0, 6);
    stock_spare(f.state, f.worker(1));
    REQUIRE(f.dispatch(0, wire::ObjectClosed{6}).ok());
    // The forget reached the spare (every running worker gets one) ...
    auto forget = f.received(1);
    REQUIRE(forget.has_value());
    REQUIRE(std::holds_alternative<wire::ObjectForget>(forget->message));
    CHECK(std::get<wire::ObjectForget>(forget->message).object_id == 6);
    // ... and the queued id is skipped when its turn comes.
    REQUIRE(send_shares(f.state, f.worker(1)).ok());
    CHECK(f.shares_to(1) == Ids{4});
    CHECK(f.state.objects_shared == 1);
}

TEST_CASE("spares: a worker holding a copy already is not sent another") {
    Fixture f;
    auto a = f.open_object(0, 2), b = f.open_object(0, 8);
    // Slot 1 asks for 8 (ObjectInfo): it holds it from then on.
    REQUIRE(f.dispatch(1, wire::ObjectQuery{8}).ok());
    auto info = f.received(1);
    REQUIRE(info.has_value());
    REQUIRE(std::holds_alternative<wire::ObjectInfo>(info->message));
    CHECK(f.state.objects.find(8)->holders.contains(1));
    CHECK(f.state.object_queries == 1);
    CHECK(f.worker(1).queries_since_resume == 1);
    stock_spare(f.state, f.worker(1));
    CHECK(f.worker(1).to_share == std::deque<std::uint32_t>{2});
    // Queued before the copy came another way: skipped at its turn.
    f.worker(1).to_share.push_back(8);
    // The opener itself is never sent its own object.
    f.worker(0).to_share = {2, 8};
    REQUIRE(send_shares(f.state, f.worker(1)).ok());
    REQUIRE(send_shares(f.state, f.worker(0)).ok());
    CHECK(f.shares_to(1) == Ids{2});
    CHECK(f.shares_to(0).empty());
    CHECK(f.state.objects_shared == 1);
}

TEST_CASE("spares: shares fill at most half the socket buffer, then wait for room; none is lost or sent twice") {
    Fixture f;
    std::vector<unique_fd> kept;
    constexpr std::uint32_t kObjects = 400;
    for (std::uint32_t id = 1; id <= kObjects; ++id) kept.push_back(f.open_object(0, id));
    stock_spare(f.state, f.worker(1));
    auto done = send_shares(f.state, f.worker(1));
    REQUIRE(done.ok());
    // A socket buffer (208 KiB by default) takes a few hundred; half of it fewer.
    CHECK_FALSE(*done);
    CHECK_FALSE(f.worker(1).to_share.empty());
    // What the supervisor must always be able to send still fits.
    CHECK(f.state.send(f.worker(1), wire::Resume{}).ok());
    std::vector<std::uint32_t> all;
    for (int round = 0; round < 100 && !f.worker(1).to_share.empty(); ++round) {
        while (auto r = f.received(1)) {
            if (auto* share = std::get_if<wire::ObjectShare>(&r->message)) all.push_back(share->object_id);
        }
        REQUIRE(send_shares(f.state, f.worker(1)).ok());
    }
    while (auto r = f.received(1))
        if (auto* share = std::get_if<wire::ObjectShare>(&r->message)) all.push_back(share->object_id);
    CHECK(f.worker(1).to_share.empty());
    REQUIRE(all.size() == kObjects);
    CHECK(std::is_sorted(all.rbegin(), all.rend()));  // newest first
    CHECK(std::set<std::uint32_t>(all.begin(), all.end()).size() == kObjects);
    CHECK(f.state.objects_shared == kObjects);
}

TEST_CASE("spares: a worker is handed at most kMaxSharedObjects; the rest is left to ObjectQuery") {
    if (!cfs::testing::room_for_fds(2 * wire::kMaxSharedObjects + 256)) return;
    Fixture f;
    std::vector<unique_fd> kept;
    const auto n = static_cast<std::uint32_t>(wire::kMaxSharedObjects + 5);
    for (std::uint32_t id = 1; id <= n; ++id) kept.push_back(f.open_object(0, id));
    kept.clear();  // the registry's copies are enough
    stock_spare(f.state, f.worker(1));
    std::size_t got = 0;
    for (int round = 0; round < 1000; ++round) {
        auto done = send_shares(f.state, f.worker(1));
        REQUIRE(done.ok());
        while (auto r = f.received(1)) got += std::holds_alternative<wire::ObjectShare>(r->message) ? 1 : 0;
        if (*done) break;
    }
    CHECK(got == wire::kMaxSharedObjects);
    CHECK(f.state.objects.held_by(1) == wire::kMaxSharedObjects);
    CHECK(f.worker(1).to_share.empty());
    // Still answered when it asks for one it was not handed.
    REQUIRE(f.dispatch(1, wire::ObjectQuery{1}).ok());
    auto info = f.received(1);
    REQUIRE(info.has_value());
    CHECK(std::holds_alternative<wire::ObjectInfo>(info->message));
}

TEST_CASE("spares: a socket with no room sends nothing, and a dead peer is an error") {
    Fixture f;
    auto a = f.open_object(0, 1);
    stock_spare(f.state, f.worker(1));
    f.state.socket_has_room = [](int) { return false; };
    auto done = send_shares(f.state, f.worker(1));
    REQUIRE(done.ok());
    CHECK_FALSE(*done);
    CHECK(f.shares_to(1).empty());
    CHECK(f.worker(1).to_share == std::deque<std::uint32_t>{1});
    f.state.socket_has_room = send_queue_has_room;
    f.worker_ends[1].reset();  // the worker is gone
    CHECK_FALSE(send_shares(f.state, f.worker(1)).ok());
}

TEST_CASE("spares: which workers want stocking") {
    Fixture f;
    WorkerSlot& w = f.worker(1);
    CHECK(wants_stock(w));
    w.retiring = true;
    CHECK_FALSE(wants_stock(w));
    w.retiring = false;
    w.dismissed = true;
    CHECK_FALSE(wants_stock(w));
    w.dismissed = false;
    for (auto st : {WorkerState::serving, WorkerState::pausing, WorkerState::starting, WorkerState::absent}) {
        w.state = st;
        CHECK_FALSE(wants_stock(w));
    }
    w.state = WorkerState::paused;
    w.stocked = true;
    CHECK_FALSE(wants_stock(w));
    w.stocked = false;
    w.pid = -1;
    CHECK_FALSE(wants_stock(w));
}

TEST_CASE("registry: holders start with the opener, and counts follow adds, removals and a holder's death") {
    ObjectRegistry reg;
    wire::ObjectDescription d{5, 100, "v", "c"};
    REQUIRE(reg.add(d, unique_fd(make_memfd()), 1));
    d.object_id = 6;
    REQUIRE(reg.add(d, unique_fd(make_memfd()), 1));
    CHECK(reg.find(5)->holders == std::set<unsigned>{1});
    CHECK(reg.held_by(1) == 2);
    CHECK(reg.held_by(2) == 0);
    CHECK(reg.add_holder(5, 2));
    CHECK_FALSE(reg.add_holder(5, 2));   // held already
    CHECK_FALSE(reg.add_holder(99, 2));  // no such object
    CHECK(reg.add_holder(6, 2));
    CHECK(reg.held_by(2) == 2);
    CHECK(reg.remove(5));
    CHECK(reg.held_by(1) == 1);
    CHECK(reg.held_by(2) == 1);
    reg.drop_holder(2);
    CHECK(reg.held_by(2) == 0);
    CHECK(reg.find(6)->holders == std::set<unsigned>{1});
    CHECK(reg.drop_if([](std::uint32_t, const RegisteredObject&) { return true; }) == std::vector<std::uint32_t>{6});
    CHECK(reg.held_by(1) == 0);
    // A new process in slot 2 holds nothing and can be handed copies again.
    d.object_id = 7;
    REQUIRE(reg.add(d, unique_fd(make_memfd()), 1));
    CHECK(reg.add_holder(7, 2));
    CHECK(reg.held_by(2) == 1);
}

TEST_CASE("dispatch: ObjectShare from a worker is a violation, and its fd is closed") {
    Fixture f;
    wire::ObjectShare share;
    share.object_id = 1;
    share.cookie_key = "img";
    std::vector<unique_fd> fds;
    fds.emplace_back(make_memfd());
    const int raw = fds.back().get();
    auto r = f.dispatch(1, share, std::move(fds));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("sent ObjectShare, which workers may not send") != std::string::npos);
    CHECK((::fcntl(raw, F_GETFD) < 0 && errno == EBADF));
    CHECK(f.state.objects.size() == 0);
}

TEST_CASE("spares: the queue of a spare that never reads is bounded by the objects there can be") {
    Fixture f(2);
    stock_spare(f.state, f.worker(1));
    f.state.max_objects = 3;
    for (std::uint32_t id = 1; id <= 10; ++id) share_with_spares(f.state, id);
    CHECK(f.worker(1).to_share.size() == 3);
}
