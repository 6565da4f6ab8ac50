// The supervisor's admin side: `reload` (and SIGHUP), `restart-workers`, and the
// slot bookkeeping both need. Kept apart from the event loop (supervisor.cc); the
// decisions are in reload.h and rolling_restart.h.
#include <time.h>

#include <algorithm>
#include <cinttypes>

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "supervisor/reload.h"
#include "supervisor/supervisor.h"
#include "supervisor/worker_process.h"
#include "supervisor/worker_user.h"

namespace cfs::supervisor {
namespace {

std::string join(const std::vector<std::string>& lines, std::string_view separator) {
    std::string out;
    for (const auto& l : lines) {
        if (!out.empty()) out += separator;
        out += l;
    }
    return out;
}

}  // namespace

// ---- reload ---------------------------------------------------------------------

ControlReply Supervisor::reload(std::string_view origin) {
    // systemd shows the unit "reloading" until READY=1 (and `systemctl reload`, whose
    // ExecReload= runs `cfsupervisor reload`, waits for that command). Before the
    // first READY=1 there is nothing to tell it.
    const bool notify = announced_ready_;
    if (notify) {
        timespec now{};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        const auto usec = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000U +
                          static_cast<std::uint64_t>(now.tv_nsec) / 1000U;
        (void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, usec);
    }
    ControlReply reply = apply_reload(origin);
    if (notify) (void)sd_notify(0, "READY=1");
    return reply;
}

ControlReply Supervisor::apply_reload(std::string_view origin) {
    auto refuse = [&](const std::string& why) {
        log::error("reload ({}) refused; the running configuration stays: {}", origin, why);
        return ControlReply{control::Code::failed,
                            fmt::format("reload refused; the running configuration stays:\n{}\n", why)};
    };
    if (config_path_.empty()) return refuse("this supervisor was started without a config file to read again");
    if (rolling_) return refuse("workers are being restarted one at a time; reload when that finished");
    auto next = load_config(config_path_);
    if (!next) return refuse(next.error().message());
    const ReloadPlan plan = plan_reload(config_, *next, refuse_below_percent());
    if (!plan.accepted()) return refuse(join(plan.refused, "\n"));
    if (plan.worker_user)
        if (auto user = resolve_worker_user(next->worker_user); !user) return refuse(user.error().message());
    std::optional<gid_t> group;
    if (plan.control_group) {
        auto resolved = ControlServer::resolve_group(next->control_group);
        if (!resolved) return refuse(resolved.error().message());
        group = *resolved;
    }
    if (plan.changes.empty()) {
        log::info("reload ({}): {} has no changes", origin, config_path_);
        return {control::Code::ok, fmt::format("reloaded {}: nothing changed\n", config_path_)};
    }
    if (plan.control_group && control_)
        if (auto set = control_->set_group(group); !set) return refuse(set.error().message());
    config_ = std::move(*next);
    log::set_level(config_.log_level);
    if (plan.cull_limits) fit_cull_limits();
    std::string notes;
    if (plan.log_level)
        notes += "running workers keep their log level; workers started from now on (and after "
                 "`cfsupervisor restart-workers`) use the new one\n";
    if (plan.read_ahead)
        notes += "running workers keep their read-ahead; workers started from now on (and after "
                 "`cfsupervisor restart-workers`) use the new one\n";
    if (plan.workers) notes += "workers are started or let go now; `cfsupervisor status` shows them\n";
    // Applied, but the running workers keep the old user: the reload must not look
    // done (a later one finds nothing changed), so it fails and says what to run.
    bool half_applied = false;
    if (plan.worker_user) {
        if (auto begun = begin_rolling_restart("workers.user changed"); !begun) {
            log::error("reload: {}", begun.error().message());
            notes += fmt::format("running workers could not be replaced ({}); they keep the old user until "
                                 "`cfsupervisor restart-workers`; new workers start as the new user\n",
                                 begun.error().message());
            half_applied = true;
        }
    }
    log::info("reload ({}) of {}: {}", origin, config_path_, join(plan.changes, "; "));
    arm_timer();
    return {half_applied ? control::Code::failed : control::Code::ok,
            fmt::format("reloaded {}: {}\n{}", config_path_, join(plan.changes, "; "), notes)};
}

// ---- rolling restart ------------------------------------------------------------

ControlReply Supervisor::restart_workers() {
    if (stopping_) return {control::Code::failed, "the supervisor is stopping\n"};
    if (!rolling_) {
        if (auto begun = begin_rolling_restart("cfsupervisor restart-workers"); !begun)
            return {control::Code::failed, fmt::format("restart-workers: {}; no worker was touched\n",
                                                       begun.error().message())};
    }
    // (A second restart-workers joins the one under way and gets the same answer.)
    const auto bound = kReplaceTimeout * (state_.workers.size() + 2);
    return ControlReply::later(std::chrono::duration_cast<std::chrono::seconds>(bound));
}

Status Supervisor::begin_rolling_restart(std::string_view why) {
    // Opened again so that an upgraded package's worker takes effect.
    auto executable = open_worker_executable();
    if (!executable) return std::move(executable).error();
    worker_executable_ = std::move(*executable);
    rolling_.emplace(state_.workers);
    rolling_began_ = Clock::now();
    rolling_result_.reset();
    log::info("rolling restart ({}): replacing {} worker(s) one at a time with the worker executable as "
              "installed now",
              why, rolling_->total());
    return {};
}

bool Supervisor::advance_rolling_restart() {
    if (!rolling_) return false;
    if (!rolling_result_) {
        const auto target_before = rolling_->deadline();
        const auto outcome = rolling_->advance(state_.workers, Clock::now());
        // A new target marked retiring: reconcile again now, or its Pause (or
        // dismissal) would wait for the next event, up to the 5 s statistics timer.
        if (outcome == RollingRestart::Outcome::running) return rolling_->deadline() != target_before;
        const unsigned slots_before = wanted_slots();
        const auto took = std::chrono::duration<double>(Clock::now() - rolling_began_).count();
        if (outcome == RollingRestart::Outcome::failed) {
            log::error("rolling restart failed after replacing {} of {} worker(s): {}", rolling_->replaced(),
                       rolling_->total(), rolling_->failure());
            finish_rolling_restart({control::Code::failed,
                                    fmt::format("restart-workers failed after replacing {} of {} worker(s): {}\n",
                                                rolling_->replaced(), rolling_->total(), rolling_->failure())});
            return wanted_slots() != slots_before;
        }
        rolling_result_ = ControlReply{control::Code::ok,
                                       fmt::format("restarted {} worker(s) one at a time in {:.1f} s", rolling_->total(),
                                                   took)};
        if (wanted_slots() != slots_before) return true;  // answered once the extra slot has gone
    }
    // Done; answer once the extra slot (no spares configured) has gone too.
    const bool settled = state_.workers.size() == wanted_slots() &&
                         std::none_of(state_.workers.begin(), state_.workers.end(),
                                      [](const WorkerSlot& w) { return w.retiring; });
    if (!settled) return false;
    std::string pids;
    for (const auto& w : state_.workers)
        if (w.running()) pids += fmt::format("{}{}", pids.empty() ? "" : " ", w.pid);
    auto reply = *rolling_result_;
    reply.text += fmt::format("; worker pids now: {}\n", pids.empty() ? "none" : pids);
    log::info("rolling restart: {}", reply.text.substr(0, reply.text.size() - 1));
    finish_rolling_restart(reply);
    return false;
}

void Supervisor::finish_rolling_restart(const ControlReply& reply) {
    if (control_)
        for (auto id : rolling_waiters_) control_->answer(id, reply);
    rolling_waiters_.clear();
    rolling_.reset();
    rolling_result_.reset();
}

// ---- slots ----------------------------------------------------------------------

unsigned Supervisor::wanted_slots() const {
    const bool surge = rolling_ && !rolling_result_ && config_.spare_count == 0;
    return config_.worker_count + config_.spare_count + (surge ? 1 : 0);
}

void Supervisor::resize_slots() {
    const unsigned want = wanted_slots();
    for (std::size_t i = want; i < state_.workers.size(); ++i) {
        WorkerSlot& w = state_.workers[i];
        w.restart_at.reset();
        if (w.running() && !w.retiring) {
            w.retiring = true;
            log::info("worker {} (pid {}) is no longer wanted; it goes once it holds no request", w.id, w.pid);
        }
    }
    while (state_.workers.size() > want && !state_.workers.back().running()) state_.workers.pop_back();
    // A wanted slot with no process and no restart pending: a reload shrank the slots,
    // cancelling its restart, and grew them back before it could go (a slot above it
    // still ran). It would otherwise stay empty until the supervisor restarts.
    for (std::size_t i = 0; i < std::min<std::size_t>(want, state_.workers.size()); ++i)
        if (WorkerSlot& w = state_.workers[i]; !w.running() && !w.restart_at) schedule_restart(w);
    while (state_.workers.size() < want) {
        state_.workers.emplace_back();
        state_.workers.back().id = static_cast<unsigned>(state_.workers.size() - 1);
        start_worker(state_.workers.back());
    }
}

void Supervisor::retire_workers() {
    const auto plan = plan_retirements(state_.workers, failover_.has_value(), config_.worker_count);
    const auto deadline = Clock::now() + kPauseTimeout;
    // False if the worker could not be told (it is killed instead).
    auto pause = [&](WorkerSlot& w) {
        if (!pause_worker(w)) return false;
        w.serving_since.reset();
        w.retire_deadline = deadline;
        return true;
    };
    for (unsigned id : plan.pause) {
        WorkerSlot& w = state_.workers[id];
        if (pause(w)) log::info("worker {} (pid {}) pausing: it is being replaced", w.id, w.pid);
    }
    for (unsigned id : plan.to_spare) {
        WorkerSlot& w = state_.workers[id];
        if (pause(w))
            log::info("worker {} (pid {}) pausing: more workers serve than workers.count ({}) wants; it waits as a "
                      "spare",
                      w.id, w.pid, config_.worker_count);
    }
    for (unsigned id : plan.dismiss) {
        WorkerSlot& w = state_.workers[id];
        // Closing its socket is how a worker is told to leave (worker/main.cc).
        w.dismissed = true;
        w.retire_deadline = deadline;
        drop_socket(w);
        log::info("worker {} (pid {}) holds no request; closed its connection so that it leaves", w.id, w.pid);
    }
    if (!plan.pause.empty() || !plan.dismiss.empty() || !plan.to_spare.empty()) arm_timer();
}

void Supervisor::on_retire_deadlines(Clock::time_point now) {
    for (auto& w : state_.workers) {
        if (!w.retire_deadline || *w.retire_deadline > now) continue;
        w.retire_deadline.reset();
        if (!w.running()) continue;
        if (w.dismissed) {
            // It holds no request: a kill needs no failover.
            log::warning("worker {} (pid {}) did not leave within {} s of its connection closing; killing it", w.id,
                         w.pid, kPauseTimeout.count());
            sigkill(w);
        } else if (w.state == WorkerState::pausing) {
            kill_worker(w, fmt::format("did not pause within {} s", kPauseTimeout.count()));
        }
    }
}

}  // namespace cfs::supervisor
