#include "supervisor/rolling_restart.h"

#include <algorithm>

#include <fmt/format.h>

namespace cfs::supervisor {

RetirePlan plan_retirements(std::span<const WorkerSlot> workers, bool failover_under_way, unsigned wanted) {
    RetirePlan plan;
    if (failover_under_way) return plan;
    auto others_serving = static_cast<unsigned>(std::count_if(workers.begin(), workers.end(), [](const WorkerSlot& w) {
        return w.state == WorkerState::serving && !w.retiring;
    }));
    // The highest slots go back to being spares first (plan_reconcile resumes the
    // lowest first, so the two agree).
    for (auto it = workers.rbegin(); it != workers.rend() && others_serving > wanted; ++it) {
        if (it->state != WorkerState::serving || it->retiring) continue;
        plan.to_spare.push_back(it->id);
        --others_serving;
    }
    for (const auto& w : workers) {
        if (!w.retiring || !w.running() || w.dismissed) continue;
        switch (w.state) {
            case WorkerState::serving:
                if (others_serving >= wanted) plan.pause.push_back(w.id);
                break;
            case WorkerState::starting:  // has never read the device
            case WorkerState::paused:
                // plan_reconcile resumes a paused retiring worker when it is needed;
                // one still paused now is not.
                if (others_serving >= wanted || w.state == WorkerState::starting) plan.dismiss.push_back(w.id);
                break;
            case WorkerState::pausing:
            case WorkerState::absent:
                break;
        }
    }
    return plan;
}

RollingRestart::RollingRestart(std::span<const WorkerSlot> workers) {
    for (const bool serving : {false, true})
        for (const auto& w : workers)
            if (w.running() && w.may_hold_requests() == serving) targets_.push_back({w.id, w.pid});
}

RollingRestart::Outcome RollingRestart::advance(std::span<WorkerSlot> workers, Clock::time_point now) {
    for (;;) {
        if (current_) {
            // Replaced: a new process in the slot is up (a slot that is gone, after a
            // reload shrank the slots, needs no replacement).
            const bool gone = current_->slot >= workers.size();
            const WorkerSlot* w = gone ? nullptr : &workers[current_->slot];
            if (!gone && (w->pid == current_->pid || !w->ready() || w->retiring)) {
                if (now < current_deadline_) return Outcome::running;
                failure_ = fmt::format("worker {} (pid {}) was not replaced within {} s ({}{}{})", current_->slot,
                                       current_->pid, kReplaceTimeout.count(),
                                       w->pid == current_->pid ? "still running, " : "", state_name(w->state),
                                       w->last_exit.empty() || w->pid == current_->pid
                                           ? std::string()
                                           : ", last exit: " + w->last_exit);
                if (w->pid == current_->pid) workers[current_->slot].retiring = false;  // it stays
                current_.reset();
                return Outcome::failed;
            }
            ++replaced_;
            current_.reset();
        }
        if (next_ == targets_.size()) return Outcome::done;
        const Target t = targets_[next_++];
        // Died and replaced (or the slot went away) since we started: done already.
        if (t.slot >= workers.size() || workers[t.slot].pid != t.pid) {
            ++replaced_;
            continue;
        }
        workers[t.slot].retiring = true;
        current_ = t;
        current_deadline_ = now + kReplaceTimeout;
        return Outcome::running;
    }
}

std::optional<Clock::time_point> RollingRestart::deadline() const {
    if (!current_) return std::nullopt;
    return current_deadline_;
}

}  // namespace cfs::supervisor
