// What the supervisor knows: its workers and the objects they opened. Shared by the
// event loop (supervisor.cc) and the worker message handlers (worker_dispatch.cc).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "common/worker_protocol.h"
#include "supervisor/object_registry.h"

namespace cfs::supervisor {

using Clock = std::chrono::steady_clock;

// CLOCK_MONOTONIC in ns, as workers give times (their start, when they answered):
// steady_clock is CLOCK_MONOTONIC on Linux. And back, for times no later than now.
[[nodiscard]] std::uint64_t monotonic_ns(Clock::time_point t);
[[nodiscard]] Clock::time_point from_monotonic_ns(std::uint64_t ns);

// Where a worker process stands in the Pause/Resume protocol (worker_protocol.h).
enum class WorkerState {
    absent,    // no process
    starting,  // Init sent, no Ready yet; not reading the device
    paused,    // Ready or Paused: not reading the device, holds no request
    serving,   // Resume sent: reads and answers requests
    pausing,   // Pause sent, no Paused yet: may still hold a request
};
[[nodiscard]] std::string_view state_name(WorkerState s);

struct WorkerSlot {
    unsigned id = 0;
    // While a process runs in this slot:
    pid_t pid = -1;
    unique_fd pidfd;
    unique_fd socket;
    WorkerState state = WorkerState::absent;
    Clock::time_point started{};
    std::optional<Clock::time_point> serving_since;
    // Answered a request since its last Resume (Progress): not crash-looping.
    bool made_progress = false;
    // Restart bookkeeping:
    unsigned consecutive_failures = 0;
    std::optional<Clock::time_point> restart_at;
    // restart_at is only a fallback: the restart comes with the failover's first answer.
    bool restart_after_recovery = false;
    std::uint64_t restarts = 0;
    std::string last_exit;
    // The last death was a SIGKILL from someone else (an operator, the OOM killer):
    // not the worker's own failure, so it adds no restart backoff.
    bool killed_from_outside = false;
    bool killed_by_us = false;  // kill_worker: a misbehaving worker, which does count
    // This process is to go once it holds no request (rolling restart, or its slot is
    // no longer wanted after a reload): supervisor/rolling_restart.h.
    bool retiring = false;
    // We closed its socket while it held no request, so it leaves: its exit is no
    // failure and needs no failover.
    bool dismissed = false;
    // Until when a retiring worker may take to answer Pause, or a dismissed one to exit.
    std::optional<Clock::time_point> retire_deadline;
    // Copies of anon fds handed out ahead of need (supervisor/spare_objects.h):
    // object ids still to send with ObjectShare, first in front.
    std::deque<std::uint32_t> to_share;
    // Stocked as a spare since it was last left paused: it is sent each object
    // copened from now on too, until its Resume.
    bool stocked = false;
    // ObjectForget its socket had no room for (a worker busy with one long request
    // reads nothing meanwhile), first in front. Sent before anything else we send
    // it, so it has closed those copies before it answers a Pause.
    std::deque<std::uint32_t> to_forget;
    // An answer (ObjectAck, ObjectInfo, ObjectUnknown) its full socket had no room
    // for: sent after the forgets queued before it, once there is room. The worker
    // waits for it, reading its socket, so the room comes.
    struct OwedReply {
        std::vector<std::byte> bytes;
        std::vector<unique_fd> fds;
        std::size_t after_forgets = 0;  // how many of to_forget go first
    };
    std::optional<OwedReply> reply_owed;
    // A Pause its full socket had no room for: sent right after to_forget, once there
    // is room (the pause deadline runs meanwhile).
    bool pause_owed = false;
    // to_forget, pause_owed or to_share waits for room in its socket (watched for EPOLLOUT).
    bool awaiting_room = false;
    // ObjectQuery it sent since its last Resume (logged with a failover's first READ).
    unsigned queries_since_resume = 0;
    // Its side of the socket closed while its pidfd did not yet say it exited: an
    // exiting process's files close a moment before that. Killed if it still runs at
    // the deadline; the event loop never waits for it. Meanwhile it is told nothing:
    // a failover counts it as pausing (its exit answers), and it is never resumed.
    std::optional<Clock::time_point> hangup_deadline;

    [[nodiscard]] bool running() const { return pid > 0; }
    [[nodiscard]] bool ready() const { return state != WorkerState::absent && state != WorkerState::starting; }
    // Whether requests the kernel would deliver again after `restore` may be in hand:
    // a worker told to serve, or one we killed for misbehaving (whatever its state, it
    // may have read requests), until its exit.
    [[nodiscard]] bool may_hold_requests() const {
        return state == WorkerState::serving || state == WorkerState::pausing || (killed_by_us && ready());
    }
    // Proved healthy: answered a request since its Resume, or was not killed by us and
    // has been up kStableUptime (serving: since its Resume, so a spare that crashes on
    // its first READ is not healthy for having waited idle).
    [[nodiscard]] bool proved_stable(Clock::time_point now) const;
};

// A worker up this long without failing is healthy even if it never answered a
// request (a spare has none to answer): its slot's earlier failures are forgiven.
inline constexpr auto kStableUptime = std::chrono::seconds(60);

// Forgives the failures of every slot whose worker proved_stable by `now`. Returns
// whether some slot still counts `crash_loop` failures in a row or more.
[[nodiscard]] bool forgive_stable_workers(std::span<WorkerSlot> workers, Clock::time_point now, unsigned crash_loop);

struct SupervisorState {
    int device = -1;
    ObjectRegistry objects;
    std::vector<WorkerSlot> workers;
    // At most this many objects are held (supervisor/fd_budget.h).
    std::size_t max_objects = SIZE_MAX;
    // Whether an fd a worker sent is really a cachefiles anon fd; replaceable in tests.
    std::function<bool(int fd)> is_cache_anon_fd;
    // Whether the kernel has withdrawn the object behind an anon fd (its CLOSE was
    // sent: the fd no longer reaches a cache file); replaceable in tests.
    std::function<bool(int fd)> object_withdrawn;
    // Told when a worker answers its first request since Resume (failover timing).
    // `answered`: when its READ was answered, by its own (validated) word.
    std::function<void(const WorkerSlot&, Clock::time_point answered)> on_progress;
    // Whether a worker's socket has room for another ObjectShare while leaving room
    // for everything else we send (supervisor/spare_objects.h); replaceable in tests.
    std::function<bool(int sock)> socket_has_room;
    // Since this supervisor started: copies sent ahead of need (ObjectShare), and
    // ObjectQuery answered (a worker needed an object it was not given).
    std::uint64_t objects_shared = 0;
    std::uint64_t object_queries = 0;

    // Sends what it is owed first (flush_owed): EAGAIN while any still waits.
    [[nodiscard]] Status send(WorkerSlot& to, const wire::Message& m, std::span<const int> fds = {});
    // Tells every running worker except `except` to close its copy of an object; one
    // whose socket is full gets it queued (to_forget), never dropped.
    void broadcast_forget(std::uint32_t object_id, const WorkerSlot* except);
    // Sends `to`'s waiting ObjectForgets, in order, at most `at_most`; EAGAIN leaves
    // the rest waiting. Callers outside flush_owed would overtake an owed answer.
    [[nodiscard]] Status flush_forgets(WorkerSlot& to, std::size_t at_most = SIZE_MAX);
    // Answers a request of `to` (ObjectOpened, ObjectQuery): a full socket owes the
    // answer rather than fail (flush_owed sends it). A second request while one is
    // owed is a violation: an honest worker waits for its answer.
    [[nodiscard]] Status reply(WorkerSlot& to, const wire::Message& m, std::span<const int> fds = {});
    // Tells `to` to pause. A socket full of messages it has not read yet (a worker
    // busy with one long request reads none) is no failure: the Pause is owed, and
    // flush_owed sends it after the ObjectForgets ahead of it.
    [[nodiscard]] Status pause(WorkerSlot& to);
    // In order: the ObjectForgets queued before an owed answer, the answer, the other
    // ObjectForgets, an owed Pause; EAGAIN while some still wait.
    [[nodiscard]] Status flush_owed(WorkerSlot& to);
};

// Reads /proc/self/fd/N: a cachefiles anon fd links to "anon_inode:[cachefiles]".
[[nodiscard]] bool is_cachefiles_anon_fd(int fd);
// lseek(SEEK_DATA) on an anon fd fails with ENOBUFS once the kernel has withdrawn its
// object (fs/cachefiles: the CLOSE is sent, then the object's file is dropped).
[[nodiscard]] bool cachefiles_object_withdrawn(int anon_fd);

}  // namespace cfs::supervisor
