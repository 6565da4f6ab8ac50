// The worker's side of the supervisor protocol (common/worker_protocol.h), behind an
// interface so the request logic can be tested without a supervisor. Any Error from
// these calls means the link is broken; the worker then exits and is replaced.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>

#include "common/result.h"
#include "common/unique_fd.h"
#include "common/worker_protocol.h"

namespace cfs::worker {

struct SharedObject {
    wire::ObjectDescription description;
    unique_fd anon_fd;  // this worker's own copy
};

class SupervisorLink {
public:
    virtual ~SupervisorLink() = default;
    // Hands the supervisor a copy of a freshly opened object's anon fd; returns once
    // the supervisor holds it, so that any worker can find it when READs arrive.
    [[nodiscard]] virtual Status object_opened(const wire::ObjectDescription& object, int anon_fd) = 0;
    [[nodiscard]] virtual Status object_copened(std::uint32_t object_id) = 0;
    // nullopt: the supervisor knows no such object.
    [[nodiscard]] virtual Result<std::optional<SharedObject>> query_object(std::uint32_t object_id) = 0;
    [[nodiscard]] virtual Status object_closed(std::uint32_t object_id) = 0;
};

class SocketSupervisorLink final : public SupervisorLink {
public:
    using ForgetHandler = std::function<void(std::uint32_t object_id)>;
    // A copy handed over ahead of need (ObjectShare); the handler owns it from then on.
    using ShareHandler = std::function<void(SharedObject object)>;

    // `sock` must be non-blocking; replies are awaited with poll().
    SocketSupervisorLink(int sock, ForgetHandler on_forget, ShareHandler on_share)
        : sock_(sock), on_forget_(std::move(on_forget)), on_share_(std::move(on_share)) {}

    Status object_opened(const wire::ObjectDescription& object, int anon_fd) override;
    Status object_copened(std::uint32_t object_id) override;
    Result<std::optional<SharedObject>> query_object(std::uint32_t object_id) override;
    Status object_closed(std::uint32_t object_id) override;

    [[nodiscard]] Status send(const wire::Message& m, std::span<const int> fds = {});
    // Handles every message already waiting (ObjectForget, ObjectShare; Pause and
    // Resume are queued for next_control); an Error means the link is broken or the
    // supervisor said something a worker never expects unprompted.
    [[nodiscard]] Status drain_unsolicited();

    enum class Control { pause, resume };
    // Pause/Resume in the order they arrived. They may arrive while a request is in
    // hand (during await_reply), and must wait until it is answered: a worker that
    // says Paused holds no request the kernel would deliver again.
    [[nodiscard]] std::optional<Control> next_control();
    [[nodiscard]] bool control_pending() const { return !control_.empty(); }

private:
    struct Incoming {
        wire::Message message;
        std::vector<unique_fd> fds;
    };
    // Waits for the reply of type `want` (for `object_id`), handling unsolicited
    // messages that arrive before it.
    [[nodiscard]] Result<Incoming> await_reply(wire::Type want, wire::Type alternative,
                                               std::uint32_t object_id);
    [[nodiscard]] Result<std::optional<Incoming>> receive(int timeout_ms);
    [[nodiscard]] Status handle_unsolicited(Incoming& in);

    int sock_;
    ForgetHandler on_forget_;
    ShareHandler on_share_;
    std::deque<Control> control_;
};

}  // namespace cfs::worker
