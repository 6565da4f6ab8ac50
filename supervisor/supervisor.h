// The supervisor's event loop: one thread, one epoll. It watches signals, each
// worker's socket and pidfd, and a timer for delayed restarts.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/unique_fd.h"
#include "supervisor/blob_stores.h"
#include "supervisor/control_server.h"
#include "supervisor/cull_pass.h"
#include "supervisor/fault_dealer.h"
#include "supervisor/fd_store.h"
#include "supervisor/stats_book.h"
#include "supervisor/rolling_restart.h"
#include "supervisor/status.h"
#include "supervisor/supervisor_state.h"

namespace cfs::supervisor {

// Restart delays: the first restart is immediate, then doubling up to the cap. A
// worker that answered a request since it was last resumed (Progress), or has been
// up kStableUptime (a spare answers none), is forgiven its slot's earlier failures:
// it was killed, not crash-looping.
inline constexpr auto kRestartBaseDelay = std::chrono::milliseconds(100);
inline constexpr auto kRestartMaxDelay = std::chrono::seconds(30);
// A worker that has not paused this long after a Pause is stuck (a request it
// cannot finish); it is killed, so its requests are delivered again.
inline constexpr auto kPauseTimeout = std::chrono::seconds(5);
// This many failures in a row without answering a request is called a crash loop
// (log and systemd STATUS=).
inline constexpr unsigned kCrashLoopFailures = 3;
// A serving worker's replacement, when a spare takes its place, starts once the
// failover's first READ is answered, or after this long: starting a process (fork,
// exec, sandbox) takes a CPU the recovery needs (benchmarked: docs/benchmarks.md).
inline constexpr auto kReplacementDeferral = std::chrono::milliseconds(250);

// A failover's first answered READ is timed (log, status) only within this long of
// the death; later, no reader was waiting when the worker died.
inline constexpr auto kRecoveryWindow = std::chrono::seconds(60);

[[nodiscard]] std::chrono::milliseconds restart_delay(unsigned consecutive_failures);

class Supervisor {
public:
    // `restore_first`: the device came from systemd's fd store, so requests the
    // previous instance had read are still pending and must be delivered again.
    // `stores`: prepare_blob_stores(config), sent to every worker after its Init.
    Supervisor(const Config& config, unique_fd device, std::vector<PreparedStore> stores,
               unique_fd worker_executable, bool restore_first);
    // Runs until SIGTERM/SIGINT; returns the process exit status.
    [[nodiscard]] int run();
    void set_control(ControlServer control) { control_.emplace(std::move(control)); }
    // Whether a copy of the device is in systemd's fd store (for status).
    void set_fd_store(bool stored) { in_fd_store_ = stored; }
    // The cache.dir and cache.tag the kernel uses (fd_store.h, CacheBinding), shown in
    // status and the ready line; by default the config's.
    // Also decides the limits culling goes by (effective_cull_limits).
    void set_bound_cache(CacheBinding bound);
    // The file `reload` and SIGHUP read again.
    void set_config_path(std::string path) { config_path_ = std::move(path); }
    [[nodiscard]] StatusSnapshot snapshot() const;

private:
    [[nodiscard]] Status setup();
    void start_worker(WorkerSlot& slot);
    void on_worker_exit(WorkerSlot& slot);
    void on_worker_message(WorkerSlot& slot);
    void kill_worker(WorkerSlot& slot, std::string_view why);
    // SIGKILL through the pidfd; reads nothing more from it (drop_socket).
    void sigkill(WorkerSlot& slot);
    // A worker whose side of the socket closed: waits up to kExitGrace for its exit
    // (WorkerSlot::hangup_deadline), then kills it.
    void await_exit(WorkerSlot& slot);
    // Sends Pause and marks it pausing; false if it could not be told and was killed
    // (or found dead) instead. One whose connection closed is marked pausing unasked.
    [[nodiscard]] bool pause_worker(WorkerSlot& slot);
    static constexpr auto kExitGrace = std::chrono::milliseconds(100);
    void drop_socket(WorkerSlot& slot);
    // Takes the exit status and clears the slot; the zombie itself is released by
    // release_dead, after the round's reconcile.
    void reap(WorkerSlot& slot);
    // What a death leaves that may wait until the failover's restore is written:
    // freeing the task and unmapping its statistics page cost up to ms in a VM.
    void release_dead();
    std::vector<unique_fd> unreleased_pidfds_;
    void schedule_restart(WorkerSlot& slot);
    // Restarts `slot` after the recovery instead of now (kReplacementDeferral).
    void defer_restart(WorkerSlot& slot);
    void on_timer();
    void arm_timer();
    // Closes every object the kernel has withdrawn whose CLOSE no worker reported
    // (it died with it); runs with the stuck-request check, every few seconds.
    void sweep_withdrawn_objects();
    // `noticed`: when its exit was seen, where the failover's times start.
    void begin_failover(const WorkerSlot& dead, Clock::time_point noticed);
    // Carries out plan_reconcile (failover.h); called after every event.
    void reconcile();
    // Stocks new spares and sends the ObjectShares queued for any worker while its
    // socket has room (spare_objects.h); the end of every reconcile.
    void keep_spares_stocked();
    void note_ready();
    [[nodiscard]] ControlReply on_control(std::string_view command, bool admin);
    void on_control_listener();
    void watch_control_client(int fd);
    // Says once in the log when the control socket's path stops leading to it.
    void check_control_path();
    void shutdown();
    // Admin commands (supervisor_admin.cc).
    [[nodiscard]] ControlReply reload(std::string_view origin);
    [[nodiscard]] ControlReply apply_reload(std::string_view origin);
    [[nodiscard]] ControlReply restart_workers();
    [[nodiscard]] Status begin_rolling_restart(std::string_view why);
    // True when it finished and the wanted slots changed (the extra slot goes):
    // reconcile then runs once more.
    [[nodiscard]] bool advance_rolling_restart();
    void finish_rolling_restart(const ControlReply& reply);
    // Slots: workers.count + workers.spares, plus one while a rolling restart runs
    // with no spares (the replacement of a serving worker needs somewhere to start).
    [[nodiscard]] unsigned wanted_slots() const;
    void resize_slots();
    void retire_workers();
    void on_retire_deadlines(Clock::time_point now);
    // Kills the workers whose connection closed kExitGrace ago and which still run.
    void on_exit_deadlines(Clock::time_point now);
    // Every kCullCheckInterval: starts a cull pass when the cache runs out of room
    // (cache_cull.h, cull_pass.h); one at a time.
    // Free space below which cachefiles refuses cache writes, as the cache was bound
    // (nullopt: bound by a version that did not record it).
    [[nodiscard]] std::optional<unsigned> refuse_below_percent() const;
    // cull_limits_ from the config and the binding; logs where they differ.
    void fit_cull_limits();
    void cull_cache(Clock::time_point now);
    void on_cull_pass_done();

    Config config_;
    unique_fd device_;
    std::vector<PreparedStore> stores_;
    unique_fd worker_executable_;
    unique_fd epoll_;
    unique_fd signals_;
    unique_fd timer_;
    SupervisorState state_;
    bool announced_ready_ = false;
    bool stopping_ = false;
    bool restore_first_ = false;
    std::optional<CacheBinding> bound_;
    Clock::time_point next_cull_check_ = Clock::now();
    std::optional<Clock::time_point> last_cache_full_warning_;
    std::optional<CullPass> cull_pass_;
    CullLimits cull_pass_limits_;  // the limits the pass under way was started with
    // What culling goes by (effective_cull_limits): the config's, fitted to the
    // refusal limit the cache was bound with. Set by set_bound_cache and reloads.
    CullLimits cull_limits_;
    bool crash_loop_announced_ = false;
    bool in_fd_store_ = false;
    Clock::time_point started_ = Clock::now();
    std::uint64_t failovers_ = 0;
    std::optional<double> last_recovery_ms_;
    std::optional<ControlServer> control_;
    bool control_path_lost_ = false;  // check_control_path said so
    std::optional<Clock::duration> watchdog_interval_;  // WatchdogSec= / 2, if set
    Clock::time_point next_watchdog_{};
    struct Failover {
        Clock::time_point began;
        Clock::time_point pause_deadline;
        unsigned dead_worker = 0;
    };
    std::optional<Failover> failover_;
    // After a failover's restore, until some worker answers a request: when and whose
    // death it recovers from (the figure operators and tests read).
    std::optional<Failover> awaiting_first_answer_;
    void on_progress(const WorkerSlot& slot, Clock::time_point answered);
    std::optional<FaultDealer> faults_;  // test builds with [testing] only
    StatsBook stats_;
    // "volume blob" of an open object, for stats (StatsBook::DescribeObject).
    [[nodiscard]] std::string describe_object(std::uint32_t object_id) const;
    std::string config_path_;
    std::optional<RollingRestart> rolling_;
    Clock::time_point rolling_began_{};
    // Control clients waiting for the rolling restart to finish (restart-workers is
    // the one command answered later: ControlReply::answer_within).
    std::vector<ControlServer::ClientId> rolling_waiters_;
    // The rolling restart finished (or failed) and waits for the slots to settle
    // (the extra slot to go) before answering.
    std::optional<ControlReply> rolling_result_;
};

}  // namespace cfs::supervisor
