// Ordering `restore` with live workers. `restore` re-queues every request the kernel
// still holds, including ones a live worker is answering right now; an OPEN read
// twice fails with EEXIST while the first reader holds its anon fd, and that error
// reaches the mount. So after a worker that may have held requests dies, every
// worker that may hold one is paused first (it finishes the request in hand), and
// `restore` is written only when none does. README "Failover" has the reasoning.
//
// The decisions are pure functions of the slots so they can be tested alone; the
// event loop (supervisor.cc) carries them out.
#pragma once

#include <span>
#include <vector>

#include "supervisor/object_registry.h"
#include "supervisor/supervisor_state.h"

namespace cfs::supervisor {

// Whether our copy of an object's anon fd must close when a worker that may have held
// requests dies (`dead_slot`): the object was opened by it and not reported copened
// (its OPEN may come again after `restore`, and fails with EEXIST while any copy is
// open), or the kernel has `withdrawn` it (it sent the CLOSE, which the dead worker
// may have read; that CLOSE never comes again, and a copy kept open pins the object).
[[nodiscard]] bool close_at_death(const RegisteredObject& object, unsigned dead_slot, bool withdrawn);

// Workers to send Pause to when a failover starts: those serving.
[[nodiscard]] std::vector<unsigned> workers_to_pause(std::span<const WorkerSlot> workers);

struct ReconcilePlan {
    bool write_restore = false;   // the failover under way can finish now
    std::vector<unsigned> resume;  // paused workers to send Resume to
};

// What to do next. During a failover: restore once no worker is pausing or serving. Otherwise:
// resume paused workers, lowest id first, until `wanted` serve; the others stay
// paused as spares. Retiring workers (rolling_restart.h) do not count as serving and
// are resumed only when no other paused worker is left.
[[nodiscard]] ReconcilePlan plan_reconcile(std::span<const WorkerSlot> workers, bool failover_under_way,
                                           unsigned wanted);

}  // namespace cfs::supervisor
