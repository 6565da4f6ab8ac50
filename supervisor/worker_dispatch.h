// Every message the supervisor accepts from a worker, in one table. Workers are
// untrusted: a message of a type not listed, sent at the wrong time, carrying the
// wrong fds or naming an object it has no business with is a protocol violation,
// and the worker is killed and replaced (never answered politely).
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "common/worker_protocol.h"
#include "supervisor/supervisor_state.h"

namespace cfs::supervisor {

using WorkerHandler = Status (*)(SupervisorState&, WorkerSlot& from, const wire::Message&,
                                 std::vector<unique_fd>& fds);

struct WorkerMessageRule {
    wire::Type type;
    bool before_ready;     // accepted before the worker said Ready
    std::string_view why_safe;
    WorkerHandler handle;
};

[[nodiscard]] std::span<const WorkerMessageRule> worker_message_rules();

// Decodes one datagram from a worker and runs its rule. An Error is a protocol
// violation: the caller kills the worker.
[[nodiscard]] Status dispatch_worker_message(SupervisorState& state, WorkerSlot& from,
                                             std::span<const std::byte> bytes, std::vector<unique_fd> fds);

}  // namespace cfs::supervisor
