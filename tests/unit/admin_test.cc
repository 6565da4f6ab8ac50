// The admin commands' decisions: the control command table, what a reload changes or
// refuses, and the rolling restart's order (supervisor/rolling_restart.h).
#include <doctest/doctest.h>

#include <string>
#include <variant>
#include <vector>

#include "common/config.h"
#include "supervisor/control_commands.h"
#include "supervisor/failover.h"
#include "supervisor/fd_store.h"
#include "supervisor/reload.h"
#include "supervisor/rolling_restart.h"

using namespace cfs;
using namespace cfs::supervisor;

namespace {

Config base_config() {
    Config c;
    c.cache_dir = "/var/cache/cfs";
    c.blobs.dir = "/blobs";
    return c;
}

bool contains(const std::string& text, std::string_view what) { return text.find(what) != std::string::npos; }

using S = WorkerState;
// Running workers (pid 100 + id) in the given states.
std::vector<WorkerSlot> running(std::initializer_list<WorkerState> states) {
    std::vector<WorkerSlot> out(states.size());
    unsigned i = 0;
    for (auto st : states) {
        out[i].id = i;
        out[i].pid = static_cast<pid_t>(100 + i);
        out[i].state = st;
        ++i;
    }
    return out;
}

// What supervisor.cc does when a retired worker left and its slot started another,
// which said Ready.
void replace(WorkerSlot& w, pid_t new_pid) {
    w.pid = new_pid;
    w.state = S::paused;
    w.retiring = false;
    w.dismissed = false;
}

}  // namespace

// ---- control command table -------------------------------------------------------

TEST_CASE("control commands: status is for readers, restart-workers and reload for root only") {
    for (const auto& c : control_commands()) {
        CAPTURE(c.request);
        const bool admin_only = c.request == "restart-workers" || c.request == "reload";
        CHECK(c.admin_only == admin_only);
        CHECK_FALSE(c.what.empty());
        // Root may run everything.
        auto as_root = route_control_request(c.request, true);
        REQUIRE(std::holds_alternative<ControlCommandId>(as_root));
        CHECK(std::get<ControlCommandId>(as_root) == c.id);
        // Others only what reads.
        auto as_reader = route_control_request(c.request, false);
        if (admin_only) {
            REQUIRE(std::holds_alternative<ControlReply>(as_reader));
            const auto& reply = std::get<ControlReply>(as_reader);
            CHECK(reply.code == control::Code::denied);
            CHECK(reply.text == "permission denied: \"" + std::string(c.request) + "\" is for root only\n");
        } else {
            CHECK(std::holds_alternative<ControlCommandId>(as_reader));
        }
    }
    CHECK(control_commands().size() == 4);
}

TEST_CASE("control commands: an unknown request is named (printably) with the known ones") {
    for (bool admin : {false, true}) {
        auto routed = route_control_request("restart\nworkers", admin);
        REQUIRE(std::holds_alternative<ControlReply>(routed));
        const auto& reply = std::get<ControlReply>(routed);
        CHECK(reply.code == control::Code::unknown_command);
        CHECK(reply.text ==
              "unknown command \"restart\\x0aworkers\" (known: status, status --json, restart-workers, reload)\n");
    }
    // Exact match only: no prefixes, no trailing spaces.
    CHECK(std::holds_alternative<ControlReply>(route_control_request("reload ", true)));
    CHECK(std::holds_alternative<ControlReply>(route_control_request("status --jso", true)));
}

// ---- reload ----------------------------------------------------------------------

TEST_CASE("reload: the same config changes nothing") {
    const auto plan = plan_reload(base_config(), base_config());
    CHECK(plan.accepted());
    CHECK(plan.changes.empty());
    CHECK_FALSE((plan.log_level || plan.workers || plan.control_group || plan.worker_user || plan.read_ahead ||
                 plan.cull_limits));
}

TEST_CASE("reload: live keys are applied and described") {
    auto next = base_config();
    next.log_level = log::Level::debug;
    next.worker_count = 2;
    next.spare_count = 0;
    next.control_group = "readers";
    next.worker_user = "other-worker";
    const auto plan = plan_reload(base_config(), next);
    REQUIRE(plan.accepted());
    CHECK(plan.log_level);
    CHECK(plan.workers);
    CHECK(plan.control_group);
    CHECK(plan.worker_user);
    CHECK(plan.changes == std::vector<std::string>{
                              "log.level info -> debug", "workers.count 1 -> 2", "workers.spares 1 -> 0",
                              "workers.user \"cfsupervisor-worker\" -> \"other-worker\" (every worker is replaced, "
                              "one at a time)",
                              "control.group (none) -> \"readers\""});
}

TEST_CASE("reload: workers.read_ahead_kib is live for workers started from then on, and alone replaces none") {
    auto next = base_config();
    next.read_ahead_kib = 1024;
    const auto plan = plan_reload(base_config(), next);
    REQUIRE(plan.accepted());
    CHECK(plan.read_ahead);
    CHECK_FALSE((plan.workers || plan.worker_user || plan.log_level || plan.control_group));
    CHECK(plan.changes == std::vector<std::string>{"workers.read_ahead_kib 65536 -> 1024"});
}

TEST_CASE("reload: when the supervisor culls is live; where the kernel refuses writes is fixed at bind") {
    auto next = base_config();
    next.cull_limits = CullLimits{.run = 20, .cull = 15, .stop = 3};
    auto plan = plan_reload(base_config(), next);
    REQUIRE(plan.accepted());
    CHECK(plan.cull_limits);
    CHECK_FALSE((plan.workers || plan.worker_user || plan.log_level || plan.control_group || plan.read_ahead));
    CHECK(plan.changes ==
          std::vector<std::string>{"cache.cull_below_percent 7 -> 15", "cache.cull_until_percent 10 -> 20"});

    next.cull_limits.stop = 5;
    plan = plan_reload(base_config(), next);
    CHECK_FALSE(plan.accepted());
    CHECK(plan.refused ==
          std::vector<std::string>{"cache.refuse_below_percent cannot change while cfsupervisor runs (3 -> 5): the "
                                   "kernel keeps the cache bound with it, across restarts too; apply it with "
                                   "`systemctl stop cfsupervisor` and `systemctl start cfsupervisor`"});
    CHECK_FALSE(plan_reload(base_config(), next, 3).accepted());
}

TEST_CASE("reload: after a restart kept the bound refusal limit, the config may go back to it, or stay") {
    // Bound with 2; restarted with a config that says 3 (the kernel kept 2).
    const auto running = base_config();
    REQUIRE(running.cull_limits.stop == 3);
    auto next = running;
    next.log_level = log::Level::debug;
    CHECK(plan_reload(running, next, 2).accepted());
    next.cull_limits.stop = 2;
    auto plan = plan_reload(running, next, 2);
    REQUIRE(plan.accepted());
    CHECK(plan.cull_limits);
    CHECK(plan.changes ==
          std::vector<std::string>{"cache.refuse_below_percent 3 -> 2", "log.level info -> debug"});
    next.cull_limits.stop = 4;
    CHECK_FALSE(plan_reload(running, next, 2).accepted());
}

TEST_CASE("reload: blobs.url is refused by name (objects were sized by the old source), set, changed or removed") {
    for (auto [from, to] : {std::pair{"", "http://registry.test/blobs/"},
                            std::pair{"http://registry.test/blobs/", "http://other.test/blobs/"},
                            std::pair{"http://registry.test/blobs/", ""}}) {
        CAPTURE(from);
        CAPTURE(to);
        auto running = base_config(), next = base_config();
        running.blobs.url = from;
        next.blobs.url = to;
        next.log_level = cfs::log::Level::debug;  // live, but the reload is refused as a whole
        const auto plan = plan_reload(running, next);
        CHECK_FALSE(plan.accepted());
        REQUIRE(plan.refused.size() == 1);
        CHECK(contains(plan.refused[0], "blobs.url cannot change while cfsupervisor runs"));
        CHECK(contains(plan.refused[0], "systemctl restart cfsupervisor"));
        CHECK_FALSE(plan.log_level);
    }
    auto same = base_config();
    same.blobs.url = "http://registry.test/blobs/";
    CHECK(plan_reload(same, same).accepted());
    auto creds = same;
    creds.blobs.credentials_file = "/etc/cfsupervisor/creds";
    const auto plan = plan_reload(same, creds);
    REQUIRE(plan.refused.size() == 1);
    CHECK(contains(plan.refused[0], "blobs.credentials cannot change while cfsupervisor runs"));
    auto origins = same;
    origins.blobs.allowed_origins = {"http://auth.test:5001"};
    const auto widened = plan_reload(same, origins);
    REQUIRE(widened.refused.size() == 1);
    CHECK(contains(widened.refused[0], "blobs.allowed_origins cannot change while cfsupervisor runs ((none) -> "
                                       "\"http://auth.test:5001\")"));
}

TEST_CASE("reload: a change to [[volume]] tables is refused, naming each volume added, removed or changed") {
    auto running = base_config();
    running.volumes = {{"a", {"/srv/a", "", "", {}}}, {"b", {"", "http://b.test/", "", {}}}};
    CHECK(plan_reload(running, running).accepted());
    auto next = running;
    next.volumes[1].blobs.credentials_file = "/etc/cfsupervisor/b";  // changed
    next.volumes.erase(next.volumes.begin());                         // a removed
    next.volumes.push_back({"c", {"/srv/c", "", "", {}}});            // c added
    next.log_level = cfs::log::Level::debug;  // live, but the reload is refused as a whole
    const auto plan = plan_reload(running, next);
    REQUIRE(plan.refused.size() == 1);
    CHECK(contains(plan.refused[0], "[[volume]] tables cannot change while cfsupervisor runs (\"a\" removed, \"b\" "
                                    "changed, \"c\" added)"));
    CHECK(contains(plan.refused[0], "systemctl restart cfsupervisor"));
    CHECK_FALSE(plan.log_level);
}

TEST_CASE("reload: cache.dir, cache.tag, blobs.dir are refused by name, and then nothing applies") {
    auto next = base_config();
    next.cache_tag = "other";
    next.blobs.dir = "/srv/blobs";
    next.worker_count = 3;  // live, but the reload is refused as a whole
    const auto plan = plan_reload(base_config(), next);
    CHECK_FALSE(plan.accepted());
    REQUIRE(plan.refused.size() == 2);
    CHECK(contains(plan.refused[0], "cache.tag cannot change while cfsupervisor runs (\"cfs\" -> \"other\")"));
    CHECK(contains(plan.refused[0], "systemctl stop cfsupervisor"));
    CHECK(contains(plan.refused[1], "blobs.dir cannot change while cfsupervisor runs (\"/blobs\" -> \"/srv/blobs\")"));
    CHECK(contains(plan.refused[1], "systemctl restart cfsupervisor"));
    CHECK(plan.changes.empty());
    CHECK_FALSE(plan.workers);

    next = base_config();
    next.cache_dir = "/var/cache/other";
    const auto dir = plan_reload(base_config(), next);
    REQUIRE(dir.refused.size() == 1);
    CHECK(contains(dir.refused[0], "cache.dir cannot change"));
    next = base_config();
    next.fault_file = "/run/fault";
    CHECK(contains(plan_reload(base_config(), next).refused.at(0), "testing.fault_file"));
}

TEST_CASE("reload: a broken file's error names file:line:column (what reload reports)") {
    auto parsed = parse_config("[cache]\ndir = \"/c\"\n[blobs]\ndir = \"/b\"\n[workers]\ncount = \"two\"\n",
                               "/etc/cfsupervisor/cfsupervisor.toml");
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message().find("/etc/cfsupervisor/cfsupervisor.toml:6:9: workers.count") == 0);
    parsed = parse_config("[cache\n", "/etc/cfsupervisor/cfsupervisor.toml");
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message().find("/etc/cfsupervisor/cfsupervisor.toml:1:") == 0);
}

// ---- rolling restart -------------------------------------------------------------

TEST_CASE("rolling restart: spares first, then serving workers, one at a time") {
    auto w = running({S::serving, S::serving, S::paused});
    RollingRestart rr(w);
    CHECK(rr.total() == 3);
    const auto now = Clock::now();
    // The spare first: it holds nothing, so it is dismissed at once.
    REQUIRE(rr.advance(w, now) == RollingRestart::Outcome::running);
    CHECK(w[2].retiring);
    CHECK_FALSE(w[0].retiring);
    auto plan = plan_retirements(w, false, 2);
    CHECK(plan.dismiss == std::vector<unsigned>{2});
    CHECK(plan.pause.empty());
    // Not replaced until a new process in its slot said Ready.
    w[2].dismissed = true;
    CHECK(rr.advance(w, now) == RollingRestart::Outcome::running);
    w[2].pid = 200;  // (reap cleared the flags)
    w[2].state = S::starting;
    w[2].retiring = false;
    w[2].dismissed = false;
    CHECK(rr.advance(w, now) == RollingRestart::Outcome::running);
    CHECK_FALSE(w[0].retiring);
    w[2].state = S::paused;
    CHECK(rr.advance(w, now) == RollingRestart::Outcome::running);
    CHECK(rr.replaced() == 1);
    CHECK(w[0].retiring);

    // Worker 0 serves: the new spare is resumed first, and only then is 0 paused.
    auto reconcile = plan_reconcile(w, false, 2);
    CHECK(reconcile.resume == std::vector<unsigned>{2});
    CHECK(plan_retirements(w, false, 2).pause.empty());  // before the resume: only 1 other serves
    w[2].state = S::serving;
    plan = plan_retirements(w, false, 2);
    CHECK(plan.pause == std::vector<unsigned>{0});
    w[0].state = S::pausing;
    CHECK(plan_retirements(w, false, 2).dismiss.empty());  // still may hold a request
    w[0].state = S::paused;
    CHECK(plan_reconcile(w, false, 2).resume.empty());  // a retiring worker is not resumed while others can serve
    CHECK(plan_retirements(w, false, 2).dismiss == std::vector<unsigned>{0});
    replace(w[0], 300);
    CHECK(rr.advance(w, now) == RollingRestart::Outcome::running);
    CHECK(w[1].retiring);
    w[0].state = S::serving;  // (resumed by plan_reconcile)
    w[1].state = S::paused;
    replace(w[1], 400);
    CHECK(rr.advance(w, now) == RollingRestart::Outcome::done);
    CHECK(rr.replaced() == 3);
}

TEST_CASE("rolling restart: a worker that died meanwhile is not replaced twice; a slot gone needs nothing") {
    auto w = running({S::serving, S::paused});
    RollingRestart rr(w);
    w[1].pid = 555;  // died and restarted before its turn
    const auto now = Clock::now();
    REQUIRE(rr.advance(w, now) == RollingRestart::Outcome::running);
    CHECK_FALSE(w[1].retiring);
    CHECK(w[0].retiring);
    w.pop_back();
    w.pop_back();  // (a reload shrank the slots)
    CHECK(rr.advance(w, now) == RollingRestart::Outcome::done);
}

TEST_CASE("rolling restart: fails after kReplaceTimeout, and the worker it waited for stays") {
    auto w = running({S::serving, S::paused});
    w.pop_back();  // only one worker, no spare: nothing can replace it
    RollingRestart rr(w);
    const auto now = Clock::now();
    REQUIRE(rr.advance(w, now) == RollingRestart::Outcome::running);
    CHECK(w[0].retiring);
    CHECK(plan_retirements(w, false, 1).pause.empty());  // nothing else serves: it keeps serving
    CHECK(rr.advance(w, now + kReplaceTimeout - std::chrono::seconds(1)) == RollingRestart::Outcome::running);
    CHECK(rr.advance(w, now + kReplaceTimeout) == RollingRestart::Outcome::failed);
    CHECK(contains(rr.failure(), "worker 0 (pid 100) was not replaced within 60 s (still running, serving)"));
    CHECK_FALSE(w[0].retiring);
}

TEST_CASE("retirement: nothing during a failover; a paused retiring worker is resumed if nothing else can serve") {
    auto w = running({S::pausing, S::paused});
    w[0].retiring = true;
    w[1].retiring = true;
    CHECK(plan_retirements(w, true, 1).pause.empty());
    CHECK(plan_retirements(w, true, 1).dismiss.empty());
    // After the failover's restore: no other worker is left, so a retiring one serves.
    w[0].state = S::paused;
    auto plan = plan_reconcile(w, true, 1);
    CHECK(plan.write_restore);
    CHECK(plan.resume == std::vector<unsigned>{0});
    // A non-retiring paused worker is preferred.
    w[1].retiring = false;
    CHECK(plan_reconcile(w, false, 1).resume == std::vector<unsigned>{1});
    // A starting retiring worker has never read the device: it may go at once.
    auto s = running({S::serving, S::starting});
    s[1].retiring = true;
    CHECK(plan_retirements(s, false, 5).dismiss == std::vector<unsigned>{1});
}

TEST_CASE("reconcile: a paused worker whose connection closed is never resumed; the next spare is") {
    auto w = running({S::paused, S::paused});
    w[0].hangup_deadline = Clock::now();
    auto plan = plan_reconcile(w, true, 1);
    CHECK(plan.write_restore);
    CHECK(plan.resume == std::vector<unsigned>{1});
    w[1].hangup_deadline = Clock::now();
    CHECK(plan_reconcile(w, false, 1).resume.empty());
    // Counted as pausing by a failover (Supervisor::pause_worker): restore waits for it.
    w[1].state = S::pausing;
    CHECK_FALSE(plan_reconcile(w, true, 1).write_restore);
}

TEST_CASE("retirement: workers serving beyond workers.count go back to being spares, highest slot first") {
    auto w = running({S::serving, S::serving, S::serving, S::paused});
    auto plan = plan_retirements(w, false, 1);
    CHECK(plan.to_spare == std::vector<unsigned>{2, 1});
    CHECK(plan.pause.empty());
    CHECK(plan_retirements(w, true, 1).to_spare.empty());  // a failover pauses everyone anyway
    CHECK(plan_retirements(w, false, 3).to_spare.empty());
    // A retiring worker still serving is not counted: its replacement serves first.
    w[0].retiring = true;
    plan = plan_retirements(w, false, 1);
    CHECK(plan.to_spare == std::vector<unsigned>{2});
    CHECK(plan.pause == std::vector<unsigned>{0});
}

// The binding stored beside the device (supervisor/fd_store.h): read back as written,
// and nothing else taken for one.
TEST_CASE("fd store: the cache's binding reads back as written; anything else is no binding") {
    for (const supervisor::CacheBinding& b : {supervisor::CacheBinding{"/var/cache/cfs dir", "cfs", 3},
                                              supervisor::CacheBinding{"/c", "t", 0},
                                              supervisor::CacheBinding{"/c", "t", 99}}) {
        const auto back = supervisor::parse_binding(supervisor::binding_text(b));
        REQUIRE(back.has_value());
        CHECK(*back == b);
    }
    // As versions before the limit was recorded wrote it: the limit is unknown.
    const auto old = supervisor::parse_binding("cfs-binding 1\ndir /a\ntag t\n");
    REQUIRE(old.has_value());
    CHECK(*old == supervisor::CacheBinding{"/a", "t", std::nullopt});
    for (const std::string_view bad :
         {"", "cfs-binding 1\n", "cfs-binding 2\ndir /a\ntag t\n", "cfs-binding 1\ndir /a\ntag t",
          "cfs-binding 1\ndir /a\n", "cfs-binding 1\ndir a\ntag t\n", "cfs-binding 1\ndir /a\ntag \n",
          "cfs-binding 1\ndir /a\ntag t\nmore\n", "cfs-binding 1\ndir \ntag t\n",
          "cfs-binding 1\ndir /a\ntag t\nrefuse_below \n", "cfs-binding 1\ndir /a\ntag t\nrefuse_below 100\n",
          "cfs-binding 1\ndir /a\ntag t\nrefuse_below -1\n", "cfs-binding 1\ndir /a\ntag t\nrefuse_below 007\n",
          "cfs-binding 1\ndir /a\ntag t\nrefuse_below +3\n", "cfs-binding 1\ndir /a\ntag t\nrefuse_below 3\nmore\n",
          "cfs-binding 1\ntag t\ndir /a\n"}) {
        CAPTURE(bad);
        CHECK_FALSE(supervisor::parse_binding(bad).has_value());
    }
}
