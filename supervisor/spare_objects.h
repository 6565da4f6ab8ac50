// Keeping spares stocked with anon fds (ObjectShare, common/worker_protocol.h), so a
// spare that takes over in a failover answers its first READ without an ObjectQuery
// round trip to us (about 1.3 ms in the test VM, a fifth of a failover's p50).
//
// - A worker left paused as a spare outside a failover (after its Ready, or a
//   serving worker paused for good) is stocked once: every copened object it does
//   not hold is queued for it, newest first. While it stays one, each object
//   copened later is queued too. Its Resume ends that (what is queued still goes).
// - Only copened objects: one whose opener dies before ObjectCopened is closed
//   everywhere before `restore`, and only paused serving workers confirm that
//   (failover.h); a spare is not paused by a failover.
// - No worker is sent a copy it holds (ObjectRegistry remembers holders), nor any
//   once it holds kMaxSharedObjects: the rest is asked for with ObjectQuery, the
//   fallback for anything a worker lacks.
// - An id is looked up again when its turn comes: an object closed (ObjectForget)
//   after it was queued is skipped, so no spare gets a copy after its forget.
// - Shares fill at most half of a worker's socket buffer (send_queue_has_room): a
//   spare reads its socket at once, but the supervisor must never meet a full
//   buffer with a Resume, Pause or ObjectForget to send. The rest waits for EPOLLOUT.
//
// Costs: nothing in the supervisor's fd table (a sent fd is no new fd here; fds in
// flight count against root's RLIMIT_NOFILE, raised to its hard limit, fd_budget.h);
// one fd per copy in the worker (two once a paused spare has opened its local blob),
// budgeted in common/worker_sandbox.h.
#pragma once

#include <cstdint>

#include "common/result.h"
#include "supervisor/supervisor_state.h"

namespace cfs::supervisor {

// Whether a worker is a spare to stock now: paused, running, not leaving, not
// stocked since it was last left paused. Called outside failovers only.
[[nodiscard]] bool wants_stock(const WorkerSlot& w);

// Queues every copened object `spare` does not hold, newest first, and marks it
// stocked.
void stock_spare(SupervisorState& state, WorkerSlot& spare);

// An object was just copened: queues it for every stocked spare.
void share_with_spares(SupervisorState& state, std::uint32_t object_id);

// Sends what is queued for `w` while its socket has room. True when the queue is
// empty, false when it waits for room; an Error when the worker cannot be reached
// (the caller kills it).
[[nodiscard]] Result<bool> send_shares(SupervisorState& state, WorkerSlot& w);

// Room for one more ObjectShare: less than half of the socket's send buffer in use
// (SIOCOUTQ against SO_SNDBUF). EPOLLOUT reports a unix socket writable below a
// quarter, so a wait for room ends with a quarter of the buffer to fill.
[[nodiscard]] bool send_queue_has_room(int sock);

}  // namespace cfs::supervisor
