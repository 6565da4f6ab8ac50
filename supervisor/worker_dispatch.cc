#include "supervisor/worker_dispatch.h"

#include <climits>

#include <fmt/format.h>

#include "common/blob_name.h"
#include "common/kernel_msg.h"
#include "common/log.h"
#include "supervisor/spare_objects.h"

namespace cfs::supervisor {
namespace {

Status on_ready(SupervisorState&, WorkerSlot& from, const wire::Message&, std::vector<unique_fd>&) {
    if (from.state != WorkerState::starting) return logic_error("said Ready twice");
    from.state = WorkerState::paused;
    log::debug("worker {} (pid {}) is up", from.id, from.pid);
    return {};
}

Status on_progress(SupervisorState& state, WorkerSlot& from, const wire::Message& m, std::vector<unique_fd>&) {
    if (from.state != WorkerState::serving && from.state != WorkerState::pausing)
        return logic_error(fmt::format("said Progress while {}", state_name(from.state)));
    if (from.made_progress) return logic_error("said Progress twice since its Resume");
    // Both clocks are the kernel's CLOCK_MONOTONIC: an answer after now is a lie.
    const auto now_ns = monotonic_ns(Clock::now());
    const auto ns = std::get<wire::Progress>(m).answered_ns;
    if (ns > now_ns) return logic_error(fmt::format("said Progress with an answer {} ns in the future", ns - now_ns));
    from.made_progress = true;
    if (state.on_progress) state.on_progress(from, from_monotonic_ns(ns));
    return {};
}

Status on_paused(SupervisorState&, WorkerSlot& from, const wire::Message&, std::vector<unique_fd>&) {
    if (from.state != WorkerState::pausing)
        return logic_error(fmt::format("said Paused while {}", state_name(from.state)));
    from.state = WorkerState::paused;
    from.serving_since.reset();
    // The deadline was for this Paused; left set, it would kill the worker if a
    // failover resumed it and a later Pause found it pausing past that time.
    from.retire_deadline.reset();
    log::debug("worker {} (pid {}) paused", from.id, from.pid);
    return {};
}

Status on_object_opened(SupervisorState& state, WorkerSlot& from, const wire::Message& m,
                        std::vector<unique_fd>& fds) {
    const auto& opened = std::get<wire::ObjectOpened>(m);
    if (opened.object_id == 0 || opened.object_id > static_cast<std::uint32_t>(INT_MAX))
        return logic_error(fmt::format("object id {} is outside the kernel's range", opened.object_id));
    if (opened.size > static_cast<std::uint64_t>(LLONG_MAX))
        return logic_error(fmt::format("object {} size {} is not a file size", opened.object_id, opened.size));
    if (!state.is_cache_anon_fd(fds.front().get()))
        return logic_error(fmt::format("object {} came with an fd that is not a cachefiles anon fd",
                                       opened.object_id));
    if (auto name = validate_blob_name(opened.cookie_key); !name)
        return logic_error(fmt::format("object {}: {}", opened.object_id, name.error().context));
    // Only a worker reading the device has an OPEN to answer; a spare that registers
    // objects is not doing what it was started for.
    if (!from.may_hold_requests())
        return logic_error(fmt::format("said ObjectOpened for object {} while {}", opened.object_id,
                                       state_name(from.state)));
    if (state.objects.size() >= state.max_objects)
        return logic_error(fmt::format("object {} would be open object number {}, more than this supervisor's fd "
                                       "limit leaves room for ({}); dropping every object, which are reopened "
                                       "on their next read",
                                       opened.object_id, state.objects.size() + 1, state.max_objects));
    if (!state.objects.add(opened, std::move(fds.front()), from.id))
        return logic_error(fmt::format("object {} registered twice", opened.object_id));
    const std::string volume = kmsg::printable(opened.volume_key), blob = kmsg::printable(opened.cookie_key);
    log::debug(log::Fields{.object_id = opened.object_id, .volume = volume, .cookie_key = blob, .worker_pid = from.pid},
               "worker {} opened object {}: volume \"{}\" blob \"{}\"", from.id, opened.object_id, volume, blob);
    return state.reply(from, wire::ObjectAck{opened.object_id});
}

Status on_object_copened(SupervisorState& state, WorkerSlot& from, const wire::Message& m,
                         std::vector<unique_fd>&) {
    const auto id = std::get<wire::ObjectCopened>(m).object_id;
    RegisteredObject* object = state.objects.find(id);
    if (object == nullptr) {
        // Closed between its ObjectAck and this: a CLOSE another worker read and
        // reported (any worker may report any CLOSE). Not this worker's fault.
        log::debug(log::Fields{.object_id = id, .worker_pid = from.pid},
                   "worker {} copened object {}, which is closed already", from.id, id);
        return {};
    }
    if (object->opener != from.id || object->copened)
        return logic_error(fmt::format("ObjectCopened for object {} that it did not just open", id));
    object->copened = true;
    // Spares get a copy now (sent after this message batch, spare_objects.h).
    share_with_spares(state, id);
    return {};
}

Status on_object_query(SupervisorState& state, WorkerSlot& from, const wire::Message& m,
                       std::vector<unique_fd>&) {
    const auto id = std::get<wire::ObjectQuery>(m).object_id;
    ++state.object_queries;
    ++from.queries_since_resume;
    RegisteredObject* object = state.objects.find(id);
    if (object == nullptr) {
        log::debug(log::Fields{.object_id = id, .worker_pid = from.pid}, "worker {} asked for unknown object {}", from.id, id);
        return state.reply(from, wire::ObjectUnknown{id});
    }
    wire::ObjectInfo info;
    static_cast<wire::ObjectDescription&>(info) = object->description;
    const int fds[] = {object->anon_fd.get()};
    if (auto sent = state.reply(from, info, fds); !sent) return sent;
    (void)state.objects.add_holder(id, from.id);
    return {};
}

Status on_object_closed(SupervisorState& state, WorkerSlot& from, const wire::Message& m,
                        std::vector<unique_fd>&) {
    const auto id = std::get<wire::ObjectClosed>(m).object_id;
    if (!state.objects.remove(id)) {
        log::debug(log::Fields{.object_id = id, .worker_pid = from.pid}, "worker {} closed object {}, which we no longer hold",
                   from.id, id);
        return {};
    }
    log::debug(log::Fields{.object_id = id, .worker_pid = from.pid}, "object {} closed (worker {})", id, from.id);
    // The sender too: a resumed spare may read this CLOSE before an ObjectShare of the
    // same object still unread in its socket, and would keep that copy for good.
    state.broadcast_forget(id, nullptr);
    return {};
}

// The table. `why_safe` says what an untrusted worker could do with the message and
// why that is harmless.
constexpr WorkerMessageRule kRules[] = {
    {wire::Type::ready, true,
     "Only flips a flag once; a second Ready is a violation.", on_ready},
    {wire::Type::paused, false,
     "Only accepted in answer to our Pause; it moves `restore` earlier, and a worker that says "
     "Paused while still holding a request gets it delivered twice: pwrite of the same bytes is "
     "harmless, and the OPEN case only hurts its own objects, which it could close anyway.",
     on_paused},
    {wire::Type::progress, false,
     "Once per Resume. It only forgives the worker's earlier failures (restart backoff) and "
     "ends the timing of a failover; a lying worker can at worst be restarted sooner after it "
     "dies, which it could reach by behaving.",
     on_progress},
    {wire::Type::object_opened, false,
     "Only while serving or pausing. We keep an fd only if it is a cachefiles anon fd (which only the kernel can mint, for an "
     "object of this cache) under an id no one registered; the worker gains nothing it did not "
     "already hold.",
     on_object_opened},
    {wire::Type::object_copened, false,
     "Only marks an object this worker registered; affects which fds we close after it dies "
     "(close_at_death): a lie keeps open an object whose OPEN it never answered, and only that "
     "mount fails, which it could fail anyway. It also hands spares a copy of that anon fd "
     "(ObjectShare), which any worker could ask for with ObjectQuery.",
     on_object_copened},
    {wire::Type::object_query, false,
     "Hands out an anon fd of this cache, which any worker holding the device fd can already "
     "obtain by reading requests; it grants no new authority.",
     on_object_query},
    {wire::Type::object_closed, false,
     "Closing copies only lets the kernel release the object; a lying worker can at worst make "
     "the next READ reopen it.",
     on_object_closed},
};

}  // namespace

std::span<const WorkerMessageRule> worker_message_rules() { return kRules; }

Status dispatch_worker_message(SupervisorState& state, WorkerSlot& from, std::span<const std::byte> bytes,
                               std::vector<unique_fd> fds) {
    auto message = wire::decode(bytes, fds.size());
    if (!message) return std::move(message).error();
    const auto type = wire::type_of(*message);
    for (const auto& rule : kRules) {
        if (rule.type != type) continue;
        if (!from.ready() && !rule.before_ready)
            return logic_error(fmt::format("sent {} before Ready", wire::type_name(static_cast<std::uint32_t>(type))));
        return rule.handle(state, from, *message, fds);
    }
    return logic_error(fmt::format("sent {}, which workers may not send",
                                   wire::type_name(static_cast<std::uint32_t>(type))));
}

}  // namespace cfs::supervisor
