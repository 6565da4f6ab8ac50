#include "tests/unit/test_fds.h"
#include "tests/unit/worker_sockets.h"
#include "supervisor/worker_dispatch.h"

#include <doctest/doctest.h>

#include <deque>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "common/fd_passing.h"
#include "supervisor/failover.h"
#include "supervisor/fd_budget.h"
#include "supervisor/object_registry.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor_state.h"

namespace {

using namespace cfs;
using namespace cfs::supervisor;
using std::chrono::milliseconds;

using cfs::testing::make_memfd;
using cfs::testing::Received;
using cfs::testing::same_file;

bool fd_is_closed(int fd) { return ::fcntl(fd, F_GETFD) < 0 && errno == EBADF; }

// A supervisor state with `n` worker slots; the test holds the worker end of each
// slot's socketpair (non-blocking, so "nothing was sent" is EAGAIN).
struct Fixture {
    SupervisorState state;
    std::vector<unique_fd> worker_ends;
    bool anon_answer = true;
    std::vector<int> anon_asked;

    explicit Fixture(unsigned n = 3) : worker_ends(testing::add_worker_slots(state, n, 100000)) {
        state.is_cache_anon_fd = [this](int fd) {
            anon_asked.push_back(fd);
            return anon_answer;
        };
    }

    WorkerSlot& worker(unsigned i) { return state.workers.at(i); }

    Status dispatch(unsigned from, const wire::Message& m, std::vector<unique_fd> fds = {}) {
        const auto bytes = wire::encode(m);
        return dispatch_worker_message(state, worker(from), bytes, std::move(fds));
    }

    Status ready(unsigned from) { return dispatch(from, wire::Ready{}); }
    // Ready, then resumed: reading the device, as a worker that opens objects is.
    Status serving(unsigned from) {
        auto said = ready(from);
        if (said) worker(from).state = WorkerState::serving;
        return said;
    }

    // What the supervisor sent to worker `i`, or nothing.
    std::optional<Received> received(unsigned i) { return testing::receive_sent(worker_ends.at(i).get()); }

    // Fills `w`'s socket as a worker busy with one long request leaves it (it reads
    // nothing); returns how many messages it took.
    unsigned fill_socket(WorkerSlot& w) {
        unsigned queued = 0;
        for (;;) {
            auto sent = state.send(w, wire::Resume{});
            if (!sent) {
                REQUIRE(sent.error().errnum == EAGAIN);
                return queued;
            }
            ++queued;
            REQUIRE(queued < 100000);
        }
    }

    // Registers `id` as opened by worker `from`; returns the fd the test kept.
    unique_fd open_object(unsigned from, std::uint32_t id, const std::string& blob = "img") {
        unique_fd mine(make_memfd());
        std::vector<unique_fd> fds;
        fds.emplace_back(::fcntl(mine.get(), F_DUPFD_CLOEXEC, 0));
        REQUIRE(fds.back().valid());
        REQUIRE(dispatch(from, opened(id, blob), std::move(fds)).ok());
        auto ack = received(from);
        REQUIRE(ack.has_value());
        REQUIRE(std::holds_alternative<wire::ObjectAck>(ack->message));
        REQUIRE(std::get<wire::ObjectAck>(ack->message).object_id == id);
        return mine;
    }

    static wire::ObjectOpened opened(std::uint32_t id, const std::string& blob = "img", std::uint64_t size = 4096) {
        wire::ObjectOpened o;
        o.object_id = id;
        o.size = size;
        o.volume_key = "erofs,vol";
        o.cookie_key = blob;
        return o;
    }
};

std::vector<unique_fd> one_fd(int* raw_out = nullptr) {
    std::vector<unique_fd> fds;
    fds.emplace_back(make_memfd());
    if (raw_out != nullptr) *raw_out = fds.back().get();
    return fds;
}

bool mentions(const Status& s, std::string_view what) {
    return !s.ok() && s.error().message().find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("dispatch: Ready marks the worker ready and nothing is answered") {
    Fixture f;
    CHECK_FALSE(f.worker(0).ready());
    REQUIRE(f.ready(0).ok());
    CHECK(f.worker(0).ready());
    CHECK_FALSE(f.worker(1).ready());
    CHECK_FALSE(f.received(0).has_value());
}

TEST_CASE("dispatch: Ready twice is a violation") {
    Fixture f;
    REQUIRE(f.ready(0).ok());
    CHECK(mentions(f.ready(0), "said Ready twice"));
}

TEST_CASE("dispatch: any other message before Ready is a violation") {
    Fixture f;
    CHECK(mentions(f.dispatch(0, wire::ObjectQuery{1}), "sent ObjectQuery before Ready"));
    CHECK(mentions(f.dispatch(0, wire::ObjectClosed{1}), "sent ObjectClosed before Ready"));
    CHECK(mentions(f.dispatch(0, wire::ObjectCopened{1}), "sent ObjectCopened before Ready"));
    int raw = -1;
    CHECK(mentions(f.dispatch(0, Fixture::opened(1), one_fd(&raw)), "sent ObjectOpened before Ready"));
    CHECK(fd_is_closed(raw));
    CHECK(f.state.objects.size() == 0);
    CHECK(f.anon_asked.empty());
    CHECK_FALSE(f.received(0).has_value());
}

TEST_CASE("dispatch: undecodable messages are violations") {
    Fixture f;
    REQUIRE(f.ready(0).ok());
    const std::byte junk[3]{};
    CHECK_FALSE(dispatch_worker_message(f.state, f.worker(0), junk, {}).ok());
    // Right type, wrong number of fds.
    CHECK(mentions(f.dispatch(0, wire::ObjectQuery{1}, one_fd()), "carries 1 fds, expected 0"));
    CHECK(mentions(f.dispatch(0, Fixture::opened(1)), "carries 0 fds, expected 1"));
    CHECK(f.state.objects.size() == 0);
}

TEST_CASE("dispatch: types workers may not send are violations") {
    Fixture f;
    REQUIRE(f.ready(0).ok());
    std::vector<unique_fd> two;  // device, stats page
    for (int i = 0; i < 2; ++i) two.emplace_back(make_memfd());
    CHECK(mentions(f.dispatch(0, wire::Init{}, std::move(two)), "sent Init, which workers may not send"));
    CHECK(mentions(f.dispatch(0, wire::BlobStore{}), "sent BlobStore, which workers may not send"));
    CHECK(mentions(f.dispatch(0, wire::BlobStoreDir{}, one_fd()), "sent BlobStoreDir, which workers may not send"));
    CHECK(mentions(f.dispatch(0, wire::ObjectAck{1}), "sent ObjectAck, which workers may not send"));
    CHECK(mentions(f.dispatch(0, wire::ObjectUnknown{1}), "sent ObjectUnknown, which workers may not send"));
    CHECK(mentions(f.dispatch(0, wire::ObjectForget{1}), "sent ObjectForget, which workers may not send"));
    wire::ObjectInfo info;
    info.object_id = 1;
    info.cookie_key = "img";
    CHECK(mentions(f.dispatch(0, info, one_fd()), "sent ObjectInfo, which workers may not send"));
    // Also before Ready: still not accepted.
    CHECK_FALSE(f.dispatch(1, wire::ObjectAck{1}).ok());
    CHECK(f.state.objects.size() == 0);
}

TEST_CASE("dispatch: ObjectOpened with an fd that is not a cachefiles anon fd is a violation") {
    Fixture f;
    REQUIRE(f.serving(0).ok());
    f.anon_answer = false;
    int raw = -1;
    auto r = f.dispatch(0, Fixture::opened(5), one_fd(&raw));
    CHECK(mentions(r, "not a cachefiles anon fd"));
    CHECK(f.anon_asked == std::vector<int>{raw});
    CHECK(fd_is_closed(raw));
    CHECK(f.state.objects.find(5) == nullptr);
    CHECK_FALSE(f.received(0).has_value());
}

TEST_CASE("dispatch: ObjectOpened with a bad blob name is a violation") {
    Fixture f;
    REQUIRE(f.serving(0).ok());
    for (const std::string name : {"../x", "a/b", "..", ""}) {
        CAPTURE(name);
        CHECK_FALSE(f.dispatch(0, Fixture::opened(5, name), one_fd()).ok());
    }
    CHECK_FALSE(f.dispatch(0, Fixture::opened(5, std::string("a\0b", 3)), one_fd()).ok());
    CHECK(f.state.objects.size() == 0);
    CHECK_FALSE(f.received(0).has_value());
}

TEST_CASE("dispatch: ObjectOpened with an id or size out of the kernel's range is a violation") {
    Fixture f;
    REQUIRE(f.serving(0).ok());
    CHECK(mentions(f.dispatch(0, Fixture::opened(0), one_fd()), "outside the kernel's range"));
    CHECK(mentions(f.dispatch(0, Fixture::opened(static_cast<std::uint32_t>(INT_MAX) + 1U), one_fd()),
                   "outside the kernel's range"));
    CHECK(mentions(f.dispatch(0, Fixture::opened(1, "img", static_cast<std::uint64_t>(LLONG_MAX) + 1), one_fd()),
                   "is not a file size"));
    CHECK(f.state.objects.size() == 0);
    // The limits themselves are fine.
    CHECK(f.dispatch(0, Fixture::opened(static_cast<std::uint32_t>(INT_MAX), "img",
                                        static_cast<std::uint64_t>(LLONG_MAX)),
                     one_fd())
              .ok());
}

TEST_CASE("dispatch: a valid ObjectOpened is registered and acknowledged") {
    Fixture f;
    REQUIRE(f.serving(1).ok());
    unique_fd mine(make_memfd());
    std::vector<unique_fd> fds;
    fds.emplace_back(::fcntl(mine.get(), F_DUPFD_CLOEXEC, 0));
    const int sent_fd = fds.back().get();
    auto o = Fixture::opened(42, "blob.img", 12345);
    o.cookie_key = "blob.img";
    REQUIRE(f.dispatch(1, o, std::move(fds)).ok());

    auto ack = f.received(1);
    REQUIRE(ack.has_value());
    REQUIRE(std::holds_alternative<wire::ObjectAck>(ack->message));
    CHECK(std::get<wire::ObjectAck>(ack->message).object_id == 42);
    CHECK(ack->fds.empty());
    CHECK_FALSE(f.received(0).has_value());
    CHECK_FALSE(f.received(2).has_value());

    RegisteredObject* reg = f.state.objects.find(42);
    REQUIRE(reg != nullptr);
    CHECK(reg->opener == 1);
    CHECK_FALSE(reg->copened);
    CHECK(reg->description.object_id == 42);
    CHECK(reg->description.size == 12345);
    CHECK(reg->description.volume_key == "erofs,vol");
    CHECK(reg->description.cookie_key == "blob.img");
    CHECK(reg->anon_fd.get() == sent_fd);  // the very fd we handed over, kept open
    CHECK(same_file(reg->anon_fd.get(), mine.get()));
}

TEST_CASE("dispatch: ObjectOpened from a worker not reading the device (a paused spare) is a violation") {
    Fixture f;
    REQUIRE(f.ready(0).ok());
    CHECK(mentions(f.dispatch(0, Fixture::opened(5), one_fd()), "said ObjectOpened for object 5 while paused"));
    CHECK(f.state.objects.find(5) == nullptr);
    CHECK_FALSE(f.received(0).has_value());
    // Pausing: an OPEN read before the Pause is still answered.
    f.worker(0).state = WorkerState::pausing;
    CHECK(f.dispatch(0, Fixture::opened(5), one_fd()).ok());
    CHECK(f.state.objects.find(5) != nullptr);
}

TEST_CASE("dispatch: a duplicate object id is a violation and keeps the first registration") {
    Fixture f;
    REQUIRE(f.serving(0).ok());
    REQUIRE(f.serving(1).ok());
    unique_fd first = f.open_object(0, 7);
    int raw = -1;
    CHECK(mentions(f.dispatch(1, Fixture::opened(7), one_fd(&raw)), "registered twice"));
    CHECK(fd_is_closed(raw));
    RegisteredObject* reg = f.state.objects.find(7);
    REQUIRE(reg != nullptr);
    CHECK(reg->opener == 0);
    CHECK(same_file(reg->anon_fd.get(), first.get()));
    CHECK_FALSE(f.received(1).has_value());
}

TEST_CASE("dispatch: objects beyond the fd budget are a violation, and the fd is closed") {
    // A compromised worker can send one anon fd under any number of ids; each would
    // cost the supervisor an fd (supervisor/fd_budget.h).
    Fixture f;
    f.state.max_objects = 2;
    REQUIRE(f.serving(0).ok());
    unique_fd a = f.open_object(0, 1);
    unique_fd b = f.open_object(0, 2);
    int raw = -1;
    CHECK(mentions(f.dispatch(0, Fixture::opened(3), one_fd(&raw)), "fd limit leaves room for (2)"));
    CHECK(fd_is_closed(raw));
    CHECK(f.state.objects.size() == 2);
    CHECK(f.state.objects.find(3) == nullptr);
    CHECK_FALSE(f.received(0).has_value());
}

TEST_CASE("fd budget: the reserve is kept for other uses, and there is always room for one object") {
    CHECK(object_budget_for(524288) == 524288 - kFdsReservedForOtherUses);
    CHECK(object_budget_for(1024) == 1024 - kFdsReservedForOtherUses);
    CHECK(object_budget_for(kFdsReservedForOtherUses) == 1);
    CHECK(object_budget_for(0) == 1);
}

TEST_CASE("dispatch: ObjectCopened only for an object the sender just opened") {
    Fixture f;
    REQUIRE(f.serving(0).ok());
    REQUIRE(f.serving(1).ok());
    auto fd = f.open_object(0, 7);
    CHECK(mentions(f.dispatch(1, wire::ObjectCopened{7}), "did not just open"));
    CHECK_FALSE(f.state.objects.find(7)->copened);
    // An id no longer registered: closed meanwhile (another worker reported its CLOSE,
    // which any worker may), so no one's fault.
    CHECK(f.dispatch(0, wire::ObjectCopened{8}).ok());
    REQUIRE(f.dispatch(0, wire::ObjectCopened{7}).ok());
    CHECK(f.state.objects.find(7)->copened);
    CHECK(mentions(f.dispatch(0, wire::ObjectCopened{7}), "did not just open"));
    CHECK_FALSE(f.received(0).has_value());
}

TEST_CASE("dispatch: ObjectQuery for a known object answers ObjectInfo with a copy of its fd") {
    Fixture f;
    REQUIRE(f.serving(0).ok());
    REQUIRE(f.serving(2).ok());
    unique_fd mine = f.open_object(0, 7, "shared-blob");
    REQUIRE(f.dispatch(2, wire::ObjectQuery{7}).ok());
    auto info = f.received(2);
    REQUIRE(info.has_value());
    REQUIRE(std::holds_alternative<wire::ObjectInfo>(info->message));
    const auto& i = std::get<wire::ObjectInfo>(info->message);
    CHECK(i.object_id == 7);
    CHECK(i.size == 4096);
    CHECK(i.volume_key == "erofs,vol");
    CHECK(i.cookie_key == "shared-blob");
    REQUIRE(info->fds.size() == 1);
    CHECK(same_file(info->fds[0].get(), mine.get()));
    // Written through the copy, read through ours.
    REQUIRE(::pwrite(info->fds[0].get(), "data", 4, 0) == 4);
    char buf[4] = {};
    REQUIRE(::pread(mine.get(), buf, 4, 0) == 4);
    CHECK(std::memcmp(buf, "data", 4) == 0);
    // The registry still holds its own copy.
    REQUIRE(f.state.objects.find(7) != nullptr);
    CHECK(f.state.objects.find(7)->anon_fd.valid());
    CHECK_FALSE(f.received(0).has_value());
}

TEST_CASE("dispatch: ObjectQuery for an unknown object answers ObjectUnknown") {
    Fixture f;
    REQUIRE(f.serving(0).ok());
    REQUIRE(f.dispatch(0, wire::ObjectQuery{99}).ok());
    auto r = f.received(0);
    REQUIRE(r.has_value());
    REQUIRE(std::holds_alternative<wire::ObjectUnknown>(r->message));
    CHECK(std::get<wire::ObjectUnknown>(r->message).object_id == 99);
    CHECK(r->fds.empty());
}

TEST_CASE("dispatch: ObjectClosed removes the object and tells every running worker, the sender too") {
    Fixture f(4);
    for (unsigned i = 0; i < 4; ++i) REQUIRE(f.serving(i).ok());
    auto fd = f.open_object(1, 7);
    f.worker(3).pid = -1;  // slot 3 has no process right now
    REQUIRE(f.dispatch(2, wire::ObjectClosed{7}).ok());
    CHECK(f.state.objects.find(7) == nullptr);
    // The sender too: an ObjectShare of the object may still be in its socket,
    // unread, and would otherwise keep a copy for good.
    for (unsigned i : {0U, 1U, 2U}) {
        CAPTURE(i);
        auto r = f.received(i);
        REQUIRE(r.has_value());
        REQUIRE(std::holds_alternative<wire::ObjectForget>(r->message));
        CHECK(std::get<wire::ObjectForget>(r->message).object_id == 7);
        CHECK_FALSE(f.received(i).has_value());
    }
    CHECK_FALSE(f.received(3).has_value());  // not running
}

TEST_CASE("dispatch: ObjectClosed for an object no longer held is accepted silently") {
    Fixture f;
    REQUIRE(f.serving(0).ok());
    REQUIRE(f.serving(1).ok());
    CHECK(f.dispatch(0, wire::ObjectClosed{123}).ok());
    CHECK_FALSE(f.received(0).has_value());
    CHECK_FALSE(f.received(1).has_value());
}

TEST_CASE("dispatch: sending to a worker that is not running fails") {
    Fixture f;
    f.worker(0).pid = -1;
    CHECK_FALSE(f.state.send(f.worker(0), wire::ObjectAck{1}).ok());
    CHECK_FALSE(f.received(0).has_value());
}

TEST_CASE("dispatch: the rule table") {
    const auto rules = worker_message_rules();
    REQUIRE_FALSE(rules.empty());
    std::set<wire::Type> types;
    for (const auto& rule : rules) {
        CAPTURE(wire::type_name(static_cast<std::uint32_t>(rule.type)));
        CHECK_FALSE(rule.why_safe.empty());
        CHECK(rule.why_safe.size() > 20);
        const bool has_handler = rule.handle != nullptr;
        CHECK(has_handler);
        CHECK(types.insert(rule.type).second);
        // Only Ready may come before Ready.
        CHECK(rule.before_ready == (rule.type == wire::Type::ready));
    }
    // Exactly the W->S types of the protocol description.
    CHECK(types == std::set<wire::Type>{wire::Type::ready, wire::Type::paused, wire::Type::progress,
                                        wire::Type::object_opened,
                                        wire::Type::object_copened, wire::Type::object_query,
                                        wire::Type::object_closed});
}

TEST_CASE("dispatch: Paused only answers our Pause") {
    Fixture f;
    REQUIRE(f.ready(0).ok());
    CHECK(f.worker(0).state == WorkerState::paused);
    CHECK(mentions(f.dispatch(0, wire::Paused{}), "said Paused while paused"));
    f.worker(0).state = WorkerState::serving;
    CHECK(mentions(f.dispatch(0, wire::Paused{}), "said Paused while serving"));
    f.worker(0).state = WorkerState::pausing;
    f.worker(0).serving_since = Clock::now();
    f.worker(0).retire_deadline = Clock::now();  // paused by a retirement (supervisor_admin.cc)
    REQUIRE(f.dispatch(0, wire::Paused{}).ok());
    CHECK(f.worker(0).state == WorkerState::paused);
    CHECK_FALSE(f.worker(0).serving_since.has_value());
    CHECK_FALSE(f.worker(0).retire_deadline.has_value());
    CHECK_FALSE(f.received(0).has_value());
    // Before Ready it is a violation like any other message.
    CHECK(mentions(f.dispatch(1, wire::Paused{}), "before Ready"));
}

TEST_CASE("dispatch: Progress once per Resume, only while serving or pausing, with when it answered") {
    Fixture f;
    unsigned told = 0;
    Clock::time_point answered{};
    f.state.on_progress = [&](const WorkerSlot&, Clock::time_point when) {
        ++told;
        answered = when;
    };
    const auto before = Clock::now();
    const wire::Progress progress{monotonic_ns(before)};
    REQUIRE(f.ready(0).ok());
    CHECK(mentions(f.dispatch(0, progress), "said Progress while paused"));
    f.worker(0).state = WorkerState::serving;
    REQUIRE(f.dispatch(0, progress).ok());
    CHECK(f.worker(0).made_progress);
    CHECK(told == 1);
    // The same instant back, to the clock's ns.
    CHECK(std::chrono::abs(answered - before) < std::chrono::microseconds(1));
    CHECK(mentions(f.dispatch(0, progress), "said Progress twice"));
    CHECK(told == 1);
}

TEST_CASE("dispatch: a Progress answered later than now is a protocol violation") {
    Fixture f;
    unsigned told = 0;
    f.state.on_progress = [&told](const WorkerSlot&, Clock::time_point) { ++told; };
    REQUIRE(f.ready(0).ok());
    f.worker(0).state = WorkerState::serving;
    const auto later = monotonic_ns(Clock::now() + std::chrono::seconds(60));
    CHECK(mentions(f.dispatch(0, wire::Progress{later}), "in the future"));
    CHECK(mentions(f.dispatch(0, wire::Progress{UINT64_MAX}), "in the future"));
    CHECK_FALSE(f.worker(0).made_progress);
    CHECK(told == 0);
    // An honest one still counts.
    REQUIRE(f.dispatch(0, wire::Progress{monotonic_ns(Clock::now())}).ok());
    CHECK(told == 1);
}

// ---------------------------------------------------------------------------------
// Failover planning (failover.h)

namespace {
std::vector<WorkerSlot> slots(std::initializer_list<WorkerState> states) {
    std::vector<WorkerSlot> out(states.size());
    unsigned i = 0;
    for (auto st : states) {
        out[i].id = i;
        out[i].state = st;
        ++i;
    }
    return out;
}
using S = WorkerState;
}  // namespace

TEST_CASE("forget: an ObjectForget a full socket cannot take waits, and goes before anything sent after it") {
    Fixture f(1);
    WorkerSlot& w = f.worker(0);
    // A worker busy with one long request reads nothing: its socket fills.
    const unsigned queued = f.fill_socket(w);
    f.state.broadcast_forget(9, nullptr);
    CHECK(w.to_forget == std::deque<std::uint32_t>{9});
    // Nothing overtakes it: a Pause now would reach the worker before the forget.
    auto pause = f.state.send(w, wire::Pause{});
    REQUIRE_FALSE(pause);
    CHECK(pause.error().errnum == EAGAIN);
    for (unsigned i = 0; i < queued; ++i) REQUIRE(f.received(0).has_value());
    REQUIRE(f.state.send(w, wire::Pause{}).ok());
    CHECK(w.to_forget.empty());
    auto first = f.received(0);
    REQUIRE(first.has_value());
    REQUIRE(std::holds_alternative<wire::ObjectForget>(first->message));
    CHECK(std::get<wire::ObjectForget>(first->message).object_id == 9);
    auto second = f.received(0);
    REQUIRE(second.has_value());
    CHECK(std::holds_alternative<wire::Pause>(second->message));
}

TEST_CASE("pause: a full socket owes the Pause, which goes after the waiting forgets once there is room") {
    Fixture f(1);
    WorkerSlot& w = f.worker(0);
    const unsigned queued = f.fill_socket(w);
    f.state.broadcast_forget(9, nullptr);
    // Not a failure (the worker is only busy): owed.
    REQUIRE(f.state.pause(w).ok());
    CHECK(w.pause_owed);
    auto still_full = f.state.flush_owed(w);
    REQUIRE_FALSE(still_full);
    CHECK(still_full.error().errnum == EAGAIN);
    for (unsigned i = 0; i < queued; ++i) REQUIRE(f.received(0).has_value());
    REQUIRE(f.state.flush_owed(w).ok());
    CHECK_FALSE(w.pause_owed);
    CHECK(w.to_forget.empty());
    auto first = f.received(0);
    REQUIRE(first.has_value());
    REQUIRE(std::holds_alternative<wire::ObjectForget>(first->message));
    auto second = f.received(0);
    REQUIRE(second.has_value());
    CHECK(std::holds_alternative<wire::Pause>(second->message));
    CHECK_FALSE(f.received(0).has_value());
    // Nothing owed: nothing more sent.
    REQUIRE(f.state.flush_owed(w).ok());
    CHECK_FALSE(f.received(0).has_value());
}

TEST_CASE("reply: an answer a full socket cannot take is owed, goes after the forgets queued before it and "
          "before later ones; a second request meanwhile is a violation") {
    Fixture f(2);
    REQUIRE(f.serving(0).ok());
    REQUIRE(f.serving(1).ok());
    unique_fd object = f.open_object(1, 7);
    WorkerSlot& w = f.worker(0);
    const unsigned queued = f.fill_socket(w);
    f.state.broadcast_forget(9, nullptr);
    // A busy worker's socket filled: its ObjectQuery is no violation, the answer owed.
    REQUIRE(f.dispatch(0, wire::ObjectQuery{7}).ok());
    REQUIRE(w.reply_owed.has_value());
    f.state.broadcast_forget(11, nullptr);
    CHECK(mentions(f.dispatch(0, wire::ObjectQuery{7}), "sent a request before reading the answer to its last one"));
    for (unsigned i = 0; i < queued; ++i) REQUIRE(f.received(0).has_value());
    REQUIRE(f.state.flush_owed(w).ok());
    CHECK_FALSE(w.reply_owed.has_value());
    auto first = f.received(0);
    REQUIRE(first.has_value());
    REQUIRE(std::holds_alternative<wire::ObjectForget>(first->message));
    CHECK(std::get<wire::ObjectForget>(first->message).object_id == 9);
    auto answer = f.received(0);
    REQUIRE(answer.has_value());
    REQUIRE(std::holds_alternative<wire::ObjectInfo>(answer->message));
    REQUIRE(answer->fds.size() == 1);
    CHECK(same_file(answer->fds[0].get(), object.get()));
    auto last = f.received(0);
    REQUIRE(last.has_value());
    REQUIRE(std::holds_alternative<wire::ObjectForget>(last->message));
    CHECK(std::get<wire::ObjectForget>(last->message).object_id == 11);
}

TEST_CASE("failover: only serving workers are paused") {
    CHECK(workers_to_pause(slots({S::serving, S::paused, S::starting, S::absent, S::serving, S::pausing})) ==
          std::vector<unsigned>{0, 4});
}

TEST_CASE("failover: restore waits for every pausing worker, and nothing resumes meanwhile") {
    auto w = slots({S::pausing, S::paused, S::paused});
    auto plan = plan_reconcile(w, true, 2);
    CHECK_FALSE(plan.write_restore);
    CHECK(plan.resume.empty());
    w[0].state = S::paused;
    plan = plan_reconcile(w, true, 2);
    CHECK(plan.write_restore);
    CHECK(plan.resume == std::vector<unsigned>{0, 1});
}

TEST_CASE("failover: a dead pausing worker no longer holds the restore back") {
    auto w = slots({S::absent, S::pausing, S::paused});
    CHECK_FALSE(plan_reconcile(w, true, 2).write_restore);
    w[1].state = S::absent;
    const auto plan = plan_reconcile(w, true, 2);
    CHECK(plan.write_restore);
    CHECK(plan.resume == std::vector<unsigned>{2});
}

TEST_CASE("failover: a worker still serving (it could not be told to pause) holds the restore back") {
    auto w = slots({S::absent, S::serving, S::paused});
    auto plan = plan_reconcile(w, true, 1);
    CHECK_FALSE(plan.write_restore);
    CHECK(plan.resume.empty());
    w[1].state = S::absent;  // its exit, reaped
    plan = plan_reconcile(w, true, 1);
    CHECK(plan.write_restore);
    CHECK(plan.resume == std::vector<unsigned>{2});
}

TEST_CASE("failover: spares stay paused until a serving worker is missing") {
    auto w = slots({S::serving, S::serving, S::paused});
    auto plan = plan_reconcile(w, false, 2);
    CHECK_FALSE(plan.write_restore);
    CHECK(plan.resume.empty());
    w[0].state = S::absent;
    plan = plan_reconcile(w, false, 2);
    CHECK(plan.resume == std::vector<unsigned>{2});
    // Starting workers cannot be resumed before they said Ready.
    w = slots({S::starting, S::starting, S::paused});
    CHECK(plan_reconcile(w, false, 2).resume == std::vector<unsigned>{2});
    // A spare we killed, whose exit has not come yet, is not resumed: the next one is.
    w = slots({S::absent, S::paused, S::paused});
    w[1].killed_by_us = true;
    CHECK(plan_reconcile(w, false, 1).resume == std::vector<unsigned>{2});
}

TEST_CASE("failover: nothing resumed when there is no failover and nothing is paused") {
    const auto plan = plan_reconcile(slots({S::serving, S::starting}), false, 2);
    CHECK_FALSE(plan.write_restore);
    CHECK(plan.resume.empty());
}

// ---------------------------------------------------------------------------------
// ObjectRegistry

TEST_CASE("registry: add, find, remove") {
    ObjectRegistry reg;
    wire::ObjectDescription d{5, 100, "v", "c"};
    CHECK(reg.add(d, unique_fd(make_memfd()), 1));
    CHECK_FALSE(reg.add(d, unique_fd(make_memfd()), 2));
    CHECK(reg.size() == 1);
    REQUIRE(reg.find(5) != nullptr);
    CHECK(reg.find(5)->opener == 1);
    CHECK(reg.find(6) == nullptr);
    const int fd = reg.find(5)->anon_fd.get();
    CHECK(reg.remove(5));
    CHECK(fd_is_closed(fd));
    CHECK_FALSE(reg.remove(5));
    CHECK(reg.size() == 0);
}

TEST_CASE("registry: drop_if closes the copies it picks, returns their ids, and keeps the rest") {
    ObjectRegistry reg;
    unique_fd a(make_memfd()), b(make_memfd()), c(make_memfd());
    const int raw_a = a.get(), raw_b = b.get(), raw_c = c.get();
    wire::ObjectDescription d;
    d.object_id = 3;
    REQUIRE(reg.add(d, std::move(a), 0));
    d.object_id = 9;
    REQUIRE(reg.add(d, std::move(b), 1));
    d.object_id = 12;
    REQUIRE(reg.add(d, std::move(c), 1));
    CHECK(reg.drop_if([](std::uint32_t id, const RegisteredObject&) { return id != 9; }) ==
          std::vector<std::uint32_t>{3, 12});
    CHECK(reg.size() == 1);
    CHECK(fd_is_closed(raw_a));
    CHECK(fd_is_closed(raw_c));
    CHECK_FALSE(fd_is_closed(raw_b));
    CHECK(reg.find(9) != nullptr);
    CHECK(reg.drop_if([](std::uint32_t, const RegisteredObject&) { return true; }) == std::vector<std::uint32_t>{9});
    CHECK(fd_is_closed(raw_b));
    CHECK(reg.drop_if([](std::uint32_t, const RegisteredObject&) { return true; }).empty());
}

TEST_CASE("failover: a dead worker's objects stay open unless their OPEN or CLOSE may have died with it") {
    auto object = [](unsigned opener, bool copened) {
        RegisteredObject o;
        o.opener = opener;
        o.copened = copened;
        return o;
    };
    const RegisteredObject copened_by_dead = object(2, true), opening_by_dead = object(2, false),
                           opening_by_live = object(1, false);
    // Kept: the spare answers their READs without a reopen.
    CHECK_FALSE(close_at_death(copened_by_dead, 2, false));
    // A live worker finishes its OPEN before it answers Pause, so before `restore`.
    CHECK_FALSE(close_at_death(opening_by_live, 2, false));
    // Its OPEN would come again and fail with EEXIST while a copy is open.
    CHECK(close_at_death(opening_by_dead, 2, false));
    // Withdrawn: its CLOSE was sent and may have died unread with the worker.
    CHECK(close_at_death(copened_by_dead, 2, true));
    CHECK(close_at_death(opening_by_live, 2, true));
}

TEST_CASE("restart_delay: immediate first, then doubling from 100 ms, capped at 30 s") {
    CHECK(restart_delay(0) == milliseconds(0));
    CHECK(restart_delay(1) == milliseconds(0));
    CHECK(restart_delay(2) == milliseconds(100));
    CHECK(restart_delay(3) == milliseconds(200));
    CHECK(restart_delay(4) == milliseconds(400));
    CHECK(restart_delay(5) == milliseconds(800));
    CHECK(restart_delay(10) == milliseconds(25600));
    CHECK(restart_delay(11) == milliseconds(30000));
    CHECK(restart_delay(12) == milliseconds(30000));
    milliseconds previous(0);
    for (unsigned n = 1; n <= 1000; ++n) {
        CAPTURE(n);
        const auto d = restart_delay(n);
        CHECK(d >= previous);
        CHECK(d <= milliseconds(30000));
        previous = d;
    }
    CHECK(restart_delay(1000) == milliseconds(30000));
    CHECK(restart_delay(UINT_MAX) == milliseconds(30000));
}

TEST_CASE("restarts: a worker up kStableUptime is forgiven its slot's failures, a spare too; the crash loop ends "
          "when no slot counts enough") {
    auto w = slots({S::serving, S::paused, S::starting});
    const auto t0 = Clock::now();
    for (auto& slot : w) {
        slot.pid = 100 + static_cast<int>(slot.id);
        slot.started = t0;
        slot.consecutive_failures = 4;
    }
    CHECK(forgive_stable_workers(w, t0 + kStableUptime - std::chrono::seconds(1), 3));
    CHECK(w[1].consecutive_failures == 4);
    // The serving worker and the spare are forgiven; the one still starting is not,
    // so the loop goes on.
    CHECK(forgive_stable_workers(w, t0 + kStableUptime, 3));
    CHECK(w[0].consecutive_failures == 0);
    CHECK(w[1].consecutive_failures == 0);
    CHECK(w[2].consecutive_failures == 4);
    w[2].state = S::paused;
    CHECK_FALSE(forgive_stable_workers(w, t0 + kStableUptime, 3));
    // A slot with no process (waiting for its delayed restart) keeps its count.
    w[0].pid = -1;
    w[0].state = S::absent;
    w[0].consecutive_failures = 3;
    CHECK(forgive_stable_workers(w, t0 + 10 * kStableUptime, 3));
}

TEST_CASE("restarts: neither a worker we killed nor a spare resumed less than kStableUptime ago proved stable") {
    auto w = slots({S::paused, S::serving});
    const auto t0 = Clock::now();
    for (auto& slot : w) {
        slot.pid = 100 + static_cast<int>(slot.id);
        slot.started = t0;
    }
    const auto later = t0 + 2 * kStableUptime;
    CHECK(w[0].proved_stable(later));
    w[0].killed_by_us = true;
    CHECK_FALSE(w[0].proved_stable(later));
    // Up long, but serving only since a moment ago: its first READs are still to come.
    w[1].serving_since = later - std::chrono::seconds(1);
    CHECK_FALSE(w[1].proved_stable(later));
    CHECK(w[1].proved_stable(later + kStableUptime));
    w[1].made_progress = true;
    CHECK(w[1].proved_stable(later));
    // A killed spare may hold requests until its exit (a failover waits for it).
    CHECK(w[0].may_hold_requests());
}
