#include "supervisor/failover.h"

#include <algorithm>

namespace cfs::supervisor {

bool close_at_death(const RegisteredObject& object, unsigned dead_slot, bool withdrawn) {
    return withdrawn || (object.opener == dead_slot && !object.copened);
}

std::vector<unsigned> workers_to_pause(std::span<const WorkerSlot> workers) {
    std::vector<unsigned> ids;
    for (const auto& w : workers)
        if (w.state == WorkerState::serving) ids.push_back(w.id);
    return ids;
}

ReconcilePlan plan_reconcile(std::span<const WorkerSlot> workers, bool failover_under_way, unsigned wanted) {
    ReconcilePlan plan;
    if (failover_under_way) {
        // Pausing, or still serving: a worker the failover could not tell to pause
        // (killed, or found dead before its exit was reaped) holds what it held until
        // its exit, an OPEN's anon fd among them.
        const bool any_holding = std::any_of(workers.begin(), workers.end(),
                                             [](const WorkerSlot& w) { return w.may_hold_requests(); });
        if (any_holding) return plan;
        plan.write_restore = true;
    }
    // A retiring worker still serving does not count: its replacement is resumed
    // first, and only then is it paused (plan_retirements). A retiring one that is
    // paused is resumed only when nothing else can serve.
    auto serving = static_cast<unsigned>(std::count_if(workers.begin(), workers.end(), [](const WorkerSlot& w) {
        return w.state == WorkerState::serving && !w.retiring;
    }));
    for (const bool retiring : {false, true}) {
        if (retiring)
            serving += static_cast<unsigned>(std::count_if(workers.begin(), workers.end(), [](const WorkerSlot& w) {
                return w.state == WorkerState::serving && w.retiring;
            }));
        for (const auto& w : workers) {
            if (serving >= wanted) break;
            // One whose connection closed cannot be told to resume, and one we killed
            // (its exit can take long: a read stuck on a hung mount) would fail the
            // Resume and yet count as serving here: both are on their way out.
            if (w.state != WorkerState::paused || w.retiring != retiring || w.dismissed || w.hangup_deadline ||
                w.killed_by_us)
                continue;
            plan.resume.push_back(w.id);
            ++serving;
        }
    }
    return plan;
}

}  // namespace cfs::supervisor
