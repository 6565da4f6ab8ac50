#include "supervisor/supervisor.h"

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <variant>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <systemd/sd-daemon.h>

#include "common/fd_passing.h"
#include "common/kernel_msg.h"
#include "common/log.h"
#include "supervisor/cache_cull.h"
#include "supervisor/cache_device.h"
#include "supervisor/control_commands.h"
#include "supervisor/failover.h"
#include "supervisor/fd_budget.h"
#include "supervisor/message_ids.h"
#include "supervisor/spare_objects.h"
#include "supervisor/worker_dispatch.h"
#include "supervisor/worker_process.h"

namespace cfs::supervisor {
namespace {

// epoll data: what kind of fd, and for workers which slot.
enum class Source : std::uint32_t {
    signals = 1,
    timer = 2,
    worker_socket = 3,
    worker_exit = 4,
    control_listener = 5,
    control_client = 6,  // the "slot" is the client's fd
    cull_pass_exit = 7,
};
std::uint64_t tag(Source s, unsigned slot = 0) {
    return (static_cast<std::uint64_t>(s) << 32) | slot;
}

constexpr auto kShutdownGrace = std::chrono::seconds(5);

}  // namespace

std::chrono::milliseconds restart_delay(unsigned consecutive_failures) {
    if (consecutive_failures <= 1) return std::chrono::milliseconds(0);
    const unsigned shift = std::min(consecutive_failures - 2, 16U);
    return std::min<std::chrono::milliseconds>(kRestartBaseDelay * (1U << shift), kRestartMaxDelay);
}

Supervisor::Supervisor(const Config& config, unique_fd device, std::vector<PreparedStore> stores,
                       unique_fd worker_executable, bool restore_first)
    : config_(config),
      device_(std::move(device)),
      stores_(std::move(stores)),
      worker_executable_(std::move(worker_executable)),
      restore_first_(restore_first) {
    state_.device = device_.get();
    cull_limits_ = config_.cull_limits;
    state_.is_cache_anon_fd = is_cachefiles_anon_fd;
    state_.object_withdrawn = cachefiles_object_withdrawn;
    state_.on_progress = [this](const WorkerSlot& slot, Clock::time_point answered) { on_progress(slot, answered); };
    state_.socket_has_room = send_queue_has_room;
    // Slots past worker_count start as paused spares; which slots serve changes as
    // workers die (plan_reconcile).
    const unsigned slots = config_.worker_count + config_.spare_count;
    state_.workers.resize(slots);
    for (unsigned i = 0; i < slots; ++i) state_.workers[i].id = i;
    if (!config_.fault_file.empty()) faults_.emplace(config_.fault_file);
}

Status Supervisor::setup() {
    state_.max_objects = object_budget();
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) return sys_error("creating the event loop");
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&mask, s);
    if (::sigprocmask(SIG_BLOCK, &mask, nullptr) < 0) return sys_error("blocking signals");
    ::signal(SIGPIPE, SIG_IGN);
    signals_.reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals_) return sys_error("creating a signalfd");
    timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!timer_) return sys_error("creating a timerfd");
    for (auto [fd, source] : {std::pair{signals_.get(), Source::signals}, std::pair{timer_.get(), Source::timer}}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag(source);
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return sys_error("watching signals and timers");
    }
    if (control_) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag(Source::control_listener);
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, control_->listener(), &ev) < 0)
            return sys_error("watching the control socket");
        // Clients hold_device accepted whose request had not come when the start
        // succeeded: answered by this loop, not closed at their deadline.
        for (const int fd : control_->awaiting_request()) watch_control_client(fd);
    }
    // The periodic checks (stuck requests, withdrawn objects, the cache's room) start
    // now: left to the first event that arms the timer, a quiet daemon never ran them.
    arm_timer();
    return {};
}

void Supervisor::on_control_listener() {
    for (const int fd : control_->accept_clients()) watch_control_client(fd);
    arm_timer();
}

void Supervisor::check_control_path() {
    if (!control_) return;
    const bool reachable = control_->reachable_at_path();
    if (reachable == !control_path_lost_) return;
    control_path_lost_ = !reachable;
    if (reachable)
        log::info("control socket {} leads to this daemon again", control_->bound_path());
    else
        log::warning("control socket {} no longer leads to this daemon: the file there was removed or replaced, "
                     "so `cfsupervisor status` and `reload` cannot reach it. Restart cfsupervisor.service to have "
                     "it made again (requests in flight survive a restart through the fd store); serving the cache "
                     "goes on meanwhile",
                     control_->bound_path());
}

void Supervisor::watch_control_client(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag(Source::control_client, static_cast<unsigned>(fd));
    // A client we cannot watch is dropped at its deadline.
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
}

ControlReply Supervisor::on_control(std::string_view command, bool admin) {
    auto routed = route_control_request(command, admin);
    if (auto* refused = std::get_if<ControlReply>(&routed)) {
        if (refused->code == control::Code::denied)
            log::info("control socket: refused \"{}\" to a client that is not root", kmsg::printable(command));
        return std::move(*refused);
    }
    switch (std::get<ControlCommandId>(routed)) {
        case ControlCommandId::status: return {control::Code::ok, render_text(snapshot())};
        case ControlCommandId::status_json: return {control::Code::ok, render_json(snapshot())};
        case ControlCommandId::restart_workers: return restart_workers();
        case ControlCommandId::reload: return reload("cfsupervisor reload");
    }
    return {control::Code::failed, "unhandled command\n"};
}

StatusSnapshot Supervisor::snapshot() const {
    const auto now = Clock::now();
    const auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
    StatusSnapshot s;
    s.version = CFS_VERSION_STRING;
    s.uptime_s = seconds(now - started_);
    s.cache_dir = bound_ ? bound_->dir : config_.cache_dir;
    s.cache_tag = bound_ ? bound_->tag : config_.cache_tag;
    if (auto room = free_room(s.cache_dir)) s.cache_room = StatusSnapshot::CacheRoom{room->blocks, room->files};
    s.cull_below_percent = cull_limits_.cull;
    s.cull_until_percent = cull_limits_.run;
    s.refuse_below_percent = refuse_below_percent();
    s.blob_dir = config_.blobs.dir;
    s.blob_url = config_.blobs.url;
    for (const VolumeConfig& v : config_.volumes) s.volume_stores.push_back({v.name, v.blobs.dir, v.blobs.url});
    s.device_origin = restore_first_ ? "taken from the fd store" : "bound by this instance";
    s.in_fd_store = in_fd_store_;
    s.workers_wanted = config_.worker_count;
    s.spares_wanted = config_.spare_count;
    s.failovers = failovers_;
    s.last_recovery_ms = last_recovery_ms_;
    if (stopping_) s.state = "stopping";
    else if (failover_) s.state = "failover";
    else if (rolling_) s.state = "restarting workers";
    else if (crash_loop_announced_) s.state = "crash loop";
    else if (!announced_ready_) s.state = "starting";
    else s.state = "serving";
    for (const auto& w : state_.workers) {
        WorkerStatus ws;
        ws.id = w.id;
        ws.pid = w.running() ? w.pid : -1;
        ws.state = std::string(state_name(w.state));
        ws.uptime_s = w.running() ? seconds(now - w.started) : 0;
        ws.restarts = w.restarts;
        ws.consecutive_failures = w.consecutive_failures;
        ws.last_exit = w.last_exit;
        if (w.restart_at) ws.restart_in_s = std::max(0.0, seconds(*w.restart_at - now));
        if (w.running()) ws.objects_held = state_.objects.held_by(w.id);
        s.workers.push_back(std::move(ws));
    }
    for (const auto& [id, object] : state_.objects.all()) ++s.objects_per_volume[object.description.volume_key];
    s.objects_shared = state_.objects_shared;
    s.object_queries = state_.object_queries;
    stats_.fill(s, state_.workers, now, [this](std::uint32_t id) { return describe_object(id); });
    return s;
}

std::string Supervisor::describe_object(std::uint32_t object_id) const {
    const auto& objects = state_.objects.all();
    const auto it = objects.find(object_id);
    if (it == objects.end()) return {};
    return it->second.description.volume_key + " " + it->second.description.cookie_key;
}

void Supervisor::start_worker(WorkerSlot& slot) {
    slot.restart_at.reset();
    slot.restart_after_recovery = false;
    auto stats_page = stats_.open_page(slot.id);
    auto spawned = spawn_worker(worker_executable_.get(), config_.worker_user);
    if (!spawned) {
        log::error("worker {}: {}", slot.id, spawned.error().message());
        ++slot.consecutive_failures;
        schedule_restart(slot);
        return;
    }
    slot.pid = spawned->pid;
    slot.pidfd = std::move(spawned->pidfd);
    slot.socket = std::move(spawned->socket);
    slot.state = WorkerState::starting;
    slot.started = Clock::now();
    slot.serving_since.reset();
    slot.made_progress = false;
    slot.killed_by_us = false;
    slot.to_share.clear();
    slot.to_forget.clear();
    slot.pause_owed = false;
    slot.reply_owed.reset();
    slot.stocked = false;
    slot.awaiting_room = false;
    slot.queries_since_resume = 0;
    slot.hangup_deadline.reset();

    // Its exit first: a worker whose exit we do not watch would never be reaped.
    for (auto [fd, source] : {std::pair{slot.pidfd.get(), Source::worker_exit},
                              std::pair{slot.socket.get(), Source::worker_socket}}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag(source, slot.id);
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0) continue;
        const auto why = sys_error("watching the worker").message();
        if (source == Source::worker_socket) {
            kill_worker(slot, why);  // reaped when its pidfd reports the exit
            return;
        }
        // Not watched, so its exit is handled here (reaped, counted, restarted): a
        // SIGKILLed process has no work left to do, and this happens only when the
        // kernel refuses epoll memory. Killed by hand: kill_worker may leave one
        // it finds hung up to an exit event that would never come.
        log::error(log::Fields{.worker_pid = slot.pid}, "worker {} (pid {}): {}; killing it", slot.id, slot.pid, why);
        slot.killed_by_us = true;
        sigkill(slot);
        on_worker_exit(slot);
        return;
    }
    if (!stats_page) {
        kill_worker(slot, stats_page.error().message());
        return;
    }
    const int fds[] = {device_.get(), *stats_page};
    wire::Init init{slot.id, static_cast<std::uint32_t>(config_.log_level), 0, config_.read_ahead_kib,
                    static_cast<std::uint32_t>(stores_.size())};
    if (faults_) {
        auto fault = faults_->next_worker();
        if (!fault) log::error("testing: {}", fault.error().message());
        else if (*fault == FaultPoint::supervisor_hang) {
            log::warning("testing: the supervisor's main loop hangs now");
            for (;;) ::pause();  // the signals we handle are blocked; systemd's SIGABRT is not
        } else if (*fault != FaultPoint::none) {
            log::warning(log::Fields{.worker_pid = slot.pid}, "testing: worker {} (pid {}) gets fault point {}", slot.id,
                         slot.pid, fault_point_name(*fault));
            init.fault_point = static_cast<std::uint32_t>(*fault);
        }
    }
    if (auto sent = state_.send(slot, init, fds); !sent) {
        kill_worker(slot, sent.error().message());
        return;
    }
    for (const PreparedStore& store : stores_) {
        auto sent = state_.send(slot, store.message);
        if (sent && store.dir) {
            const int dir[] = {store.dir.get()};
            sent = state_.send(slot, wire::BlobStoreDir{store.message.store}, dir);
        }
        if (!sent) {
            kill_worker(slot, sent.error().message());
            return;
        }
    }
    log::debug(log::Fields{.worker_pid = slot.pid}, "worker {} started as pid {}", slot.id, slot.pid);
}

void Supervisor::drop_socket(WorkerSlot& slot) {
    if (slot.socket) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, slot.socket.get(), nullptr);
    slot.socket.reset();
}

void Supervisor::sigkill(WorkerSlot& slot) {
    // Nothing more is read from it: a socket at EOF or with junk queued would
    // otherwise wake us again and again until the pidfd reports the exit, which then
    // reaps and replaces it.
    if (::syscall(SYS_pidfd_send_signal, slot.pidfd.get(), SIGKILL, nullptr, 0) < 0 && errno != ESRCH)
        // EPERM: no CAP_KILL (units/cfsupervisor.service grants it); the worker runs
        // on, and whatever waits for it waits.
        log::error(log::Fields{.worker_pid = slot.pid}, "worker {} (pid {}): {}", slot.id, slot.pid,
                   sys_error("sending SIGKILL").message());
    drop_socket(slot);
}

void Supervisor::await_exit(WorkerSlot& slot) {
    log::debug(log::Fields{.worker_pid = slot.pid}, "worker {} (pid {}) closed its connection; waiting {} ms for its exit",
               slot.id, slot.pid, kExitGrace.count());
    // At EOF the socket would stay readable for ever.
    drop_socket(slot);
    slot.hangup_deadline = Clock::now() + kExitGrace;
    arm_timer();
}

bool Supervisor::pause_worker(WorkerSlot& slot) {
    if (!slot.hangup_deadline) {
        if (auto sent = state_.pause(slot); !sent) {
            kill_worker(slot, sent.error().message());
            if (!slot.hangup_deadline) {
                // Killed, or found dead: nothing more runs in it, but until its exit is
                // reaped it may hold an OPEN's anon fd (a `restore` now would fail that
                // OPEN with EEXIST), so its exit ends the wait like a Paused would.
                if (slot.running()) slot.state = WorkerState::pausing;
                return false;
            }
        }
    }
    // Told, or cannot be told while it may still hold requests: either way its Paused
    // or its exit ends the wait.
    slot.state = WorkerState::pausing;
    return true;
}

void Supervisor::kill_worker(WorkerSlot& slot, std::string_view why) {
    // Killed once already: its exit is on its way, and one line said why. Or its
    // connection closed: it is on its way out, or killed when its grace ends.
    if (!slot.running() || slot.killed_by_us || slot.hangup_deadline) return;
    const bool violation = why.starts_with("protocol violation");
    // A worker that died (killed from outside, crashed) fails every send to it until
    // its pidfd is read: that is its own death, reaped and judged as it happened (a
    // SIGKILL from outside counts no failure), not a kill of ours.
    const bool exited = has_exited(slot.pidfd.get());
    // Its side of the socket closed: most likely the files of a worker on its way out.
    pollfd sock{slot.socket.get(), POLLIN, 0};
    const bool hung_up = !exited && slot.socket && ::poll(&sock, 1, 0) == 1 && (sock.revents & POLLHUP) != 0;
    if (exited || hung_up) {
        log::write(violation ? log::Level::error : log::Level::info,
                   fmt::format("worker {} (pid {}): {}; {}", slot.id, slot.pid, why,
                               exited ? "it has exited already" : "it closed its connection, on its way out"),
                   log::Fields{.worker_pid = slot.pid, .message_id = violation ? ids::kProtocolViolation : ""});
        if (exited)
            drop_socket(slot);
        else
            await_exit(slot);
        return;
    }
    log::error(log::Fields{.worker_pid = slot.pid, .message_id = violation ? ids::kProtocolViolation : ""},
               "worker {} (pid {}): {}; killing it", slot.id, slot.pid, why);
    slot.killed_by_us = true;
    sigkill(slot);
}

void Supervisor::on_exit_deadlines(Clock::time_point now) {
    for (auto& w : state_.workers) {
        if (!w.hangup_deadline || *w.hangup_deadline > now) continue;
        w.hangup_deadline.reset();
        // Exited by now: its pidfd event, maybe in the same batch, reaps it.
        if (!w.running() || has_exited(w.pidfd.get())) continue;
        // Why it was told nothing more was logged when that was found; this is only
        // the kill, which counts against its slot.
        kill_worker(w, "closed its connection to the supervisor and lives on");
    }
}

void Supervisor::reap(WorkerSlot& slot) {
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(slot.pidfd.get()), &info, WEXITED | WNOWAIT) < 0) {
        log::error("worker {}: {}", slot.id, sys_error("reaping").message());
        slot.last_exit = "unknown";
    } else {
        slot.last_exit = describe_exit(info.si_code, info.si_status);
        slot.killed_from_outside = info.si_code == CLD_KILLED && info.si_status == SIGKILL && !slot.killed_by_us;
    }
    stats_.retire(slot.id);
    drop_socket(slot);
    // Its copies of anon fds died with it.
    state_.objects.drop_holder(slot.id);
    slot.to_share.clear();
    slot.to_forget.clear();
    slot.pause_owed = false;
    slot.reply_owed.reset();
    slot.stocked = false;
    slot.awaiting_room = false;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, slot.pidfd.get(), nullptr);
    unreleased_pidfds_.push_back(std::move(slot.pidfd));
    slot.pid = -1;
    slot.state = WorkerState::absent;
    slot.serving_since.reset();
    slot.retiring = false;
    slot.dismissed = false;
    slot.retire_deadline.reset();
    slot.hangup_deadline.reset();
}

void Supervisor::release_dead() {
    for (const auto& pidfd : unreleased_pidfds_) {
        siginfo_t info{};
        // A zombie since reap's WNOWAIT: this returns at once.
        if (::waitid(P_PIDFD, static_cast<id_t>(pidfd.get()), &info, WEXITED) < 0 && errno != ECHILD)
            log::error("{}", sys_error("releasing a dead worker").message());
    }
    unreleased_pidfds_.clear();
    stats_.release_retired();
}

void Supervisor::on_worker_exit(WorkerSlot& slot) {
    const auto noticed = Clock::now();
    const pid_t pid = slot.pid;
    // Counts a worker we killed for breaking the protocol, whatever its state: a spare
    // that read requests anyway would leave their readers waiting for good, and a
    // failover costs the serving workers only a pause.
    const bool held_requests = slot.may_hold_requests();
    // A worker that answered a request since its Resume, or was up kStableUptime
    // without being killed by us, proved healthy (WorkerSlot::proved_stable); one
    // that died sooner may be crash-looping.
    // A SIGKILL from outside says nothing about the worker: it neither forgives nor
    // counts (an operator killing workers gets them back at once).
    const bool was_stable = slot.proved_stable(noticed);
    const auto state_at_death = slot.state;
    const bool dismissed = slot.dismissed;
    reap(slot);
    if (stopping_) return;
    if (dismissed) {
        // We closed its socket while it held nothing: it left as told (rolling_restart.h).
        log::info("worker {} (pid {}) left ({})", slot.id, pid, slot.last_exit);
        if (slot.id < wanted_slots()) start_worker(slot);
        return;
    }

    if (was_stable) slot.consecutive_failures = 1;
    else if (!slot.killed_from_outside || slot.consecutive_failures == 0) ++slot.consecutive_failures;
    ++slot.restarts;
    log::warning(log::Fields{.worker_pid = pid, .message_id = ids::kWorkerDied},
                 "worker {} (pid {}, {}) {}; restart {} (failure {} in a row)", slot.id, pid,
                 state_name(state_at_death), slot.last_exit, slot.restarts, slot.consecutive_failures);

    if (held_requests) {
        // Copies of the objects close_at_death (failover.h) picks are closed, ours and
        // the other workers' (the ObjectForget reaches each before the Pause that the
        // failover sends, so it has closed them by the time it answers Paused). An
        // object whose withdrawal (and CLOSE) is still under way is closed by the next
        // sweep (sweep_withdrawn_objects). Every other object stays open: the spare
        // answers its re-delivered READs at once, instead of waiting for the kernel to
        // reopen it (an OPEN and a round trip to us).
        const auto dropped = state_.objects.drop_if([&](std::uint32_t, const RegisteredObject& o) {
            return close_at_death(o, slot.id, state_.object_withdrawn(o.anon_fd.get()));
        });
        for (auto id : dropped) state_.broadcast_forget(id, nullptr);
        if (!dropped.empty())
            log::info("failover: closed {} object(s) whose OPEN or CLOSE worker {} may have held; the kernel "
                      "reopens each on its next READ",
                      dropped.size(), slot.id);
        begin_failover(slot, noticed);
    }
    if (slot.id >= wanted_slots()) return;  // the slot goes (resize_slots)
    // A paused spare takes the dead worker's place (reconcile): the replacement is not
    // needed for the recovery, and would only compete with it for a CPU.
    const bool spare_takes_over =
        held_requests && std::any_of(state_.workers.begin(), state_.workers.end(), [&](const WorkerSlot& w) {
            return w.id != slot.id && w.state == WorkerState::paused && !w.retiring && !w.killed_by_us;
        });
    if (spare_takes_over && restart_delay(slot.consecutive_failures).count() == 0)
        defer_restart(slot);
    else
        schedule_restart(slot);
}

void Supervisor::defer_restart(WorkerSlot& slot) {
    slot.restart_at = Clock::now() + kReplacementDeferral;
    slot.restart_after_recovery = true;
    arm_timer();
}

void Supervisor::begin_failover(const WorkerSlot& dead, Clock::time_point noticed) {
    if (!failover_) {
        failover_ = Failover{noticed, Clock::now() + kPauseTimeout, dead.id};
        ++failovers_;
        log::info("failover: requests worker {} had taken will be delivered again", dead.id);
    }
    for (unsigned id : workers_to_pause(state_.workers)) (void)pause_worker(state_.workers[id]);
    arm_timer();
}

void Supervisor::on_progress(const WorkerSlot& slot, Clock::time_point answered) {
    if (crash_loop_announced_) {
        crash_loop_announced_ = false;
        log::info(log::Fields{.worker_pid = slot.pid}, "worker {} answered a request: no longer crash-looping", slot.id);
        (void)sd_notify(0, "STATUS=serving");
    }
    if (!awaiting_first_answer_) return;
    // From the death noticed to the READ answered, when the reader got its data (the
    // worker's word; dispatch made sure it is no later than now), not to this message.
    const auto took = std::chrono::duration<double, std::milli>(
        std::max(answered, awaiting_first_answer_->began) - awaiting_first_answer_->began);
    // How many objects it had to ask us for first: 0 when it was a spare stocked with
    // them (spare_objects.h), which saves a round trip.
    log::info(log::Fields{.worker_pid = slot.pid},
              "failover: worker {} answered the first READ {:.1f} ms after worker {} died; {} ObjectQuery since its Resume",
              slot.id, took.count(), awaiting_first_answer_->dead_worker, slot.queries_since_resume);
    last_recovery_ms_ = took.count();
    awaiting_first_answer_.reset();
    for (auto& w : state_.workers)
        if (w.restart_after_recovery && w.restart_at && !w.running()) start_worker(w);
}

void Supervisor::reconcile() {
    if (stopping_) return;
    resize_slots();
    const auto plan = plan_reconcile(state_.workers, failover_.has_value(), config_.worker_count);
    if (plan.write_restore) {
        awaiting_first_answer_ = failover_;
        failover_.reset();
        if (auto restored = restore_requests(device_.get()); !restored) {
            log::error("{}", restored.error().message());
        } else {
            const std::chrono::duration<double, std::milli> took = Clock::now() - awaiting_first_answer_->began;
            log::info(log::Fields{.message_id = ids::kFailoverDone},
                      "failover: restore written {:.1f} ms after the worker died; no worker held a request", took.count());
        }
        arm_timer();
    }
    for (unsigned id : plan.resume) {
        WorkerSlot& w = state_.workers[id];
        if (auto sent = state_.send(w, wire::Resume{}); !sent) {
            kill_worker(w, sent.error().message());
            continue;
        }
        w.state = WorkerState::serving;
        w.serving_since = Clock::now();
        w.made_progress = false;
        w.stocked = false;  // no longer a spare: new objects no longer come unasked
        w.queries_since_resume = 0;
        log::info(log::Fields{.worker_pid = w.pid}, "worker {} (pid {}) serving", w.id, w.pid);
    }
    retire_workers();
    if (advance_rolling_restart()) reconcile();
    keep_spares_stocked();
    note_ready();
}

void Supervisor::keep_spares_stocked() {
    // Workers paused by a failover are resumed when it ends; they are no spares.
    if (!failover_)
        for (auto& w : state_.workers)
            if (wants_stock(w)) stock_spare(state_, w);
    for (auto& w : state_.workers) {
        if (!w.running() || !w.socket) continue;
        bool done = true;
        if (w.to_forget.size() > state_.max_objects) {
            // More than there are objects: it has read nothing for that long.
            kill_worker(w, fmt::format("reads nothing from its socket: {} ObjectForget waiting", w.to_forget.size()));
            continue;
        }
        if (!w.to_forget.empty() || w.pause_owed || w.reply_owed) {
            auto flushed = state_.flush_owed(w);
            if (!flushed && flushed.error().errnum != EAGAIN) {
                kill_worker(w, flushed.error().message());
                continue;
            }
            done = flushed.ok();
        }
        if (done && !w.to_share.empty()) {
            auto sent = send_shares(state_, w);
            if (!sent) {
                // A worker that is dying (its socket closed with it) is not killed
                // again: kill_worker tells.
                kill_worker(w, sent.error().message());
                continue;
            }
            done = *sent;
        }
        if (done != w.awaiting_room) continue;
        // Watched for room while forgets or shares wait for it, and only then (EPOLLOUT
        // is level triggered: an idle socket would wake us for ever).
        epoll_event ev{};
        ev.events = EPOLLIN | (done ? 0U : static_cast<std::uint32_t>(EPOLLOUT));
        ev.data.u64 = tag(Source::worker_socket, w.id);
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, w.socket.get(), &ev) == 0) w.awaiting_room = !done;
    }
}

void Supervisor::schedule_restart(WorkerSlot& slot) {
    const auto delay = restart_delay(slot.consecutive_failures);
    if (delay.count() == 0) {
        start_worker(slot);
        return;
    }
    log::info("worker {} restarts in {} ms", slot.id, delay.count());
    slot.restart_at = Clock::now() + delay;
    arm_timer();
    if (slot.consecutive_failures >= kCrashLoopFailures) {
        // Also in `systemctl status`, where an operator looks first.
        const auto status = fmt::format("crash loop: worker {} failed {} times in a row ({}); next restart in {} ms",
                                        slot.id, slot.consecutive_failures, slot.last_exit, delay.count());
        log::warning("{}", status);
        (void)sd_notify(0, ("STATUS=" + status).c_str());
        crash_loop_announced_ = true;
    }
}

void Supervisor::sweep_withdrawn_objects() {
    // A withdrawn object's CLOSE went to a worker, which closes its copy and reports
    // ObjectClosed; one that died first never did, and our copy would pin the object.
    const auto dropped = state_.objects.drop_if(
        [&](std::uint32_t, const RegisteredObject& o) { return state_.object_withdrawn(o.anon_fd.get()); });
    for (auto id : dropped) {
        log::info(log::Fields{.object_id = id},
                  "object {} was withdrawn by the kernel and its CLOSE never reported: closed our copy", id);
        state_.broadcast_forget(id, nullptr);
    }
}

void Supervisor::arm_timer() {
    std::optional<Clock::time_point> next;
    if (failover_) next = failover_->pause_deadline;
    if (control_)
        if (auto deadline = control_->next_deadline(); deadline && (!next || *deadline < *next)) next = deadline;
    for (const auto& w : state_.workers)
        for (const auto& at : {w.restart_at, w.retire_deadline, w.hangup_deadline})
            if (at && (!next || *at < *next)) next = at;
    if (rolling_)
        if (auto deadline = rolling_->deadline(); deadline && (!next || *deadline < *next)) next = deadline;
    if (!next || stats_.next_check() < *next) next = stats_.next_check();
    if (next_cull_check_ < *next) next = next_cull_check_;
    itimerspec spec{};
    if (next) {
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*next - Clock::now()).count();
        ns = std::max<long long>(ns, 1);  // zero would disarm the timer
        spec.it_value.tv_sec = ns / 1'000'000'000;
        spec.it_value.tv_nsec = ns % 1'000'000'000;
    }
    ::timerfd_settime(timer_.get(), 0, &spec, nullptr);
}

void Supervisor::on_timer() {
    std::uint64_t expirations;
    (void)!::read(timer_.get(), &expirations, sizeof expirations);
    const auto now = Clock::now();
    if (control_) (void)control_->expire(now);
    if (failover_ && failover_->pause_deadline <= now) {
        for (auto& w : state_.workers)
            if (w.state == WorkerState::pausing)
                kill_worker(w, fmt::format("did not pause within {} s", kPauseTimeout.count()));
        // Its death (pidfd) ends the wait; until then no new deadline.
        failover_->pause_deadline = Clock::time_point::max();
    }
    on_retire_deadlines(now);
    on_exit_deadlines(now);
    for (auto& w : state_.workers)
        if (w.restart_at && *w.restart_at <= now) start_worker(w);
    if (stats_.next_check() <= now) {
        stats_.check_stuck(state_.workers, now, [this](std::uint32_t id) { return describe_object(id); });
        sweep_withdrawn_objects();
        check_control_path();
    }
    if (!forgive_stable_workers(state_.workers, now, kCrashLoopFailures) && crash_loop_announced_) {
        crash_loop_announced_ = false;
        log::info("no longer crash-looping: the workers of the slots that failed have been up {} s since",
                  kStableUptime.count());
        (void)sd_notify(0, "STATUS=serving");
    }
    if (next_cull_check_ <= now) cull_cache(now);
    if (awaiting_first_answer_ && now - awaiting_first_answer_->began >= kRecoveryWindow) {
        // An idle worker's death: no reader was waiting, and a READ hours later would
        // pass for a very slow recovery (log and status).
        log::info("failover: no READ answered within {} s of worker {}'s death: no reader was waiting; not timed",
                  kRecoveryWindow.count(), awaiting_first_answer_->dead_worker);
        awaiting_first_answer_.reset();
    }
    arm_timer();
}

void Supervisor::set_bound_cache(CacheBinding bound) {
    bound_ = std::move(bound);
    fit_cull_limits();
}

void Supervisor::fit_cull_limits() {
    const CullLimits& configured = config_.cull_limits;
    cull_limits_ = effective_cull_limits(configured, refuse_below_percent());
    if (cull_limits_.cull != configured.cull || cull_limits_.run != configured.run)
        log::warning("cachefiles refuses cache writes below {}% free, as the cache was bound: culling starts below "
                     "{}% and frees up to {}% instead of the configured {}% and {}%",
                     cull_limits_.stop, cull_limits_.cull, cull_limits_.run, configured.cull, configured.run);
}

std::optional<unsigned> Supervisor::refuse_below_percent() const {
    return bound_ ? bound_->refuse_below_percent : std::optional<unsigned>(config_.cull_limits.stop);
}

void Supervisor::cull_cache(Clock::time_point now) {
    next_cull_check_ = now + kCullCheckInterval;
    if (cull_pass_) return;  // its end is an event of its own
    const std::string& dir = bound_ ? bound_->dir : config_.cache_dir;
    auto room = free_at_least(dir, cull_limits_.cull);
    if (!room) {
        log::warning("cache {}: {}", dir, room.error().message());
        return;
    }
    if (*room) return;
    auto pass = CullPass::start(device_.get(), dir, cull_limits_.run);
    if (!pass) {
        log::warning("cache {} has less than {}% free: {}", dir, cull_limits_.cull, pass.error().message());
        return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag(Source::cull_pass_exit);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, pass->pidfd(), &ev) < 0) {
        log::warning("cache {}: {}", dir, sys_error("watching the cull pass").message());
        return;  // the pass is killed and reaped as it goes out of scope
    }
    cull_pass_.emplace(std::move(*pass));
    cull_pass_limits_ = cull_limits_;
}

void Supervisor::on_cull_pass_done() {
    if (!cull_pass_) return;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, cull_pass_->pidfd(), nullptr);
    auto outcome = cull_pass_->finish();
    cull_pass_.reset();
    const std::string& dir = bound_ ? bound_->dir : config_.cache_dir;
    if (!outcome) {
        log::warning("cache {}: {}", dir, outcome.error().message());
        return;
    }
    const CullReport& r = outcome->report;
    if (r.culled > 0)
        log::info("cache {} had less than {}% free: culled {} cache file(s) no image uses, {:.1f} MiB, the least "
                  "recently used first ({} in use left alone)",
                  dir, cull_pass_limits_.cull, r.culled, static_cast<double>(r.freed_bytes) / (1 << 20), r.in_use);
    if (r.failed > 0)
        log::warning("cache {}: {} cache file(s) could not be culled and were skipped; the first: {}", dir, r.failed,
                     outcome->failure);
    if (!outcome->still_short) return;
    // Said once a minute, not after every pass.
    const auto now = Clock::now();
    if (last_cache_full_warning_ && now - *last_cache_full_warning_ < std::chrono::minutes(1)) return;
    last_cache_full_warning_ = now;
    const std::string why =
        r.walk_capped ? fmt::format("the cache holds more files than one pass looks at; {} in use", r.in_use)
        : r.failed > 0 ? fmt::format("{} in use, {} could not be culled", r.in_use, r.failed)
                       : fmt::format("nothing left to cull: {} cache file(s) in use", r.in_use);
    log::warning("cache {} is still short of {}% free after culling ({}): below {} cachefiles refuses writes, and "
                 "readers of data not yet cached get EIO; give the cache more room or unmount images",
                 dir, cull_pass_limits_.run, why, refusal_limit_text(refuse_below_percent()));
}

void Supervisor::on_worker_message(WorkerSlot& slot) {
    // Bounded, so one chatty worker cannot starve the others.
    for (int i = 0; i < 64 && slot.running(); ++i) {
        std::array<std::byte, wire::kMaxMessageSize> buffer;
        auto received = receive_message(slot.socket.get(), buffer, kMaxFdsPerMessage);
        if (!received && received.error().errnum == EAGAIN) return;
        // ECONNRESET: a worker that died with messages unread by it; like EOF.
        const bool closed = received ? received->size == 0 : received.error().errnum == ECONNRESET;
        if (!received && !closed) {
            kill_worker(slot, received.error().message());
            return;
        }
        if (closed) {
            // A worker closes its end by exiting (its files close a moment before
            // its pidfd says so), and on_worker_exit reports the death. One that
            // closed it and lives on cannot be served, and is killed as one that
            // misbehaves. The socket leaves epoll either way: at EOF it would stay
            // readable forever.
            if (has_exited(slot.pidfd.get())) {
                log::debug(log::Fields{.worker_pid = slot.pid}, "worker {} (pid {}) closed its connection and exited",
                           slot.id, slot.pid);
                drop_socket(slot);
            } else {
                await_exit(slot);
            }
            return;
        }
        auto handled = dispatch_worker_message(state_, slot, std::span(buffer).first(received->size),
                                               std::move(received->fds));
        if (!handled) {
            kill_worker(slot, "protocol violation: " + handled.error().message());
            return;
        }
    }
}

void Supervisor::note_ready() {
    if (announced_ready_) return;
    const auto serving = std::count_if(state_.workers.begin(), state_.workers.end(),
                                       [](const WorkerSlot& w) { return w.state == WorkerState::serving; });
    if (static_cast<unsigned>(serving) < config_.worker_count) return;
    announced_ready_ = true;
    log::info("ready: cache {} (tag {}) bound, {} worker(s) serving blobs from {}{}{}, {} spare(s)",
              bound_ ? bound_->dir : config_.cache_dir, bound_ ? bound_->tag : config_.cache_tag,
              config_.worker_count, config_.blobs.dir,
              config_.blobs.url.empty() ? std::string() : fmt::format(", then {}", config_.blobs.url),
              config_.volumes.empty() ? std::string() : fmt::format(" and {} volume(s) of their own", config_.volumes.size()),
              config_.spare_count);
    (void)sd_notify(0, "READY=1\nSTATUS=serving");
}

void Supervisor::shutdown() {
    if (rolling_) finish_rolling_restart({control::Code::failed, "the supervisor is stopping\n"});
    stopping_ = true;
    (void)sd_notify(0, "STOPPING=1");
    log::info("stopping: closing worker connections");
    // A worker leaves when its socket closes; we keep the pidfds to wait for them.
    for (auto& w : state_.workers) {
        w.restart_at.reset();
        if (w.running()) drop_socket(w);
    }
    const auto deadline = Clock::now() + kShutdownGrace;
    for (auto& w : state_.workers) {
        if (!w.running()) continue;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{w.pidfd.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0))) <= 0) {
            log::warning(log::Fields{.worker_pid = w.pid}, "worker {} (pid {}) did not stop within {} s; killing it", w.id, w.pid,
                         kShutdownGrace.count());
            sigkill(w);
        }
        reap(w);
    }
    release_dead();
}

int Supervisor::run() {
    if (auto ok = setup(); !ok) {
        log::error("{}", ok.error().message());
        return EXIT_FAILURE;
    }
    if (restore_first_) {
        // No worker runs yet, so nothing is in flight anywhere: safe to re-queue all.
        if (auto restored = restore_requests(device_.get()); !restored)
            log::error("{}", restored.error().message());
        else
            log::info("restore written: requests the previous instance had taken are delivered again");
    }
    if (std::uint64_t usec = 0; sd_watchdog_enabled(0, &usec) > 0) {
        // Ping at half the limit, as systemd advises.
        watchdog_interval_ = std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(usec / 2));
        log::info("systemd watchdog: {} ms limit; pinging from the main loop", usec / 1000);
    }
    for (auto& w : state_.workers) start_worker(w);

    for (;;) {
        std::array<epoll_event, 16> events;
        int timeout_ms = -1;
        if (watchdog_interval_) {
            const auto now = Clock::now();
            if (now >= next_watchdog_) {
                // Only a loop that comes round proves the supervisor alive.
                (void)sd_notify(0, "WATCHDOG=1");
                next_watchdog_ = now + *watchdog_interval_;
            }
            timeout_ms = static_cast<int>(
                std::chrono::ceil<std::chrono::milliseconds>(next_watchdog_ - now).count());
        }
        const int n = ::epoll_wait(epoll_.get(), events.data(), events.size(), timeout_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            log::error("{}", sys_error("waiting for events").message());
            return EXIT_FAILURE;
        }
        for (int i = 0; i < n; ++i) {
            const auto source = static_cast<Source>(events[i].data.u64 >> 32);
            const auto slot = static_cast<unsigned>(events[i].data.u64 & 0xffffffffU);
            switch (source) {
                case Source::signals: {
                    signalfd_siginfo si{};
                    while (::read(signals_.get(), &si, sizeof si) == sizeof si) {
                        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                            log::info("received {}", ::strsignal(static_cast<int>(si.ssi_signo)));
                            shutdown();
                            log::info("stopped");
                            return EXIT_SUCCESS;
                        }
                        if (si.ssi_signo == SIGHUP) (void)reload("SIGHUP");  // it logs the outcome
                        // SIGCHLD: workers are reaped through their pidfds.
                    }
                    break;
                }
                case Source::timer: on_timer(); break;
                case Source::control_listener: on_control_listener(); break;
                case Source::control_client:
                    if (auto waiting = control_->serve(
                            static_cast<int>(slot), [this](std::string_view c, bool admin) { return on_control(c, admin); }))
                        rolling_waiters_.push_back(*waiting);
                    break;
                case Source::worker_socket:
                    // EPOLLOUT alone: room for shares, which reconcile sends below.
                    if (slot < state_.workers.size() && (events[i].events & ~static_cast<std::uint32_t>(EPOLLOUT)) != 0)
                        on_worker_message(state_.workers[slot]);
                    break;
                case Source::worker_exit:
                    if (slot < state_.workers.size() && state_.workers[slot].running())
                        on_worker_exit(state_.workers[slot]);
                    break;
                case Source::cull_pass_exit: on_cull_pass_done(); break;
            }
        }
        reconcile();
        release_dead();
    }
}

}  // namespace cfs::supervisor
