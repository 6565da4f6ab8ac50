#include "worker/supervisor_link.h"

#include <poll.h>

#include <array>
#include <chrono>
#include <cerrno>

#include <fmt/format.h>

#include "common/fd_passing.h"

namespace cfs::worker {
namespace {
// A supervisor that does not answer within this time is wedged; the worker gives up
// and exits rather than hold kernel requests forever.
constexpr int kReplyTimeoutMs = 30'000;

std::uint32_t object_id_of(const wire::Message& m) {
    return std::visit(
        [](const auto& v) -> std::uint32_t {
            if constexpr (requires { v.object_id; }) return v.object_id;
            else return 0;
        },
        m);
}
}  // namespace

Status SocketSupervisorLink::send(const wire::Message& m, std::span<const int> fds) {
    const auto bytes = wire::encode(m);
    // A burst (CLOSEs of a mass unmount) can fill the socket while the supervisor is
    // busy: wait for room as long as for an answer. It never waits for us in turn
    // (it queues what it sends), so the room comes unless it is wedged.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kReplyTimeoutMs);
    for (;;) {
        auto sent = send_message(sock_, bytes, fds);
        if (sent || sent.error().errnum != EAGAIN || std::chrono::steady_clock::now() >= deadline) return sent;
        pollfd p{sock_, POLLOUT, 0};
        if (::poll(&p, 1, 100) < 0 && errno != EINTR) return sys_error("waiting for room to the supervisor");
    }
}

Result<std::optional<SocketSupervisorLink::Incoming>> SocketSupervisorLink::receive(int timeout_ms) {
    pollfd p{sock_, POLLIN, 0};
    int ready;
    do {
        ready = ::poll(&p, 1, timeout_ms);
    } while (ready < 0 && errno == EINTR);
    if (ready < 0) return sys_error("waiting for the supervisor");
    if (ready == 0) return std::optional<Incoming>{};

    std::array<std::byte, wire::kMaxMessageSize> buffer;
    auto received = receive_message(sock_, buffer, kMaxFdsPerMessage);
    if (!received) {
        if (received.error().errnum == EAGAIN) return std::optional<Incoming>{};
        return std::move(received).error();
    }
    if (received->size == 0) return logic_error("the supervisor closed the connection");
    auto message = wire::decode(std::span(buffer).first(received->size), received->fds.size());
    if (!message) return logic_error("bad message from the supervisor: " + message.error().context);
    return std::optional<Incoming>{Incoming{std::move(*message), std::move(received->fds)}};
}

Status SocketSupervisorLink::handle_unsolicited(Incoming& in) {
    const wire::Message& m = in.message;
    if (const auto* forget = std::get_if<wire::ObjectForget>(&m)) {
        on_forget_(forget->object_id);
        return {};
    }
    if (const auto* share = std::get_if<wire::ObjectShare>(&m)) {
        // decode() checked it came with exactly one fd.
        on_share_(SharedObject{*share, std::move(in.fds.front())});
        return {};
    }
    if (std::holds_alternative<wire::Pause>(m)) {
        control_.push_back(Control::pause);
        return {};
    }
    if (std::holds_alternative<wire::Resume>(m)) {
        control_.push_back(Control::resume);
        return {};
    }
    return logic_error(fmt::format("unexpected {} from the supervisor",
                                   wire::type_name(static_cast<std::uint32_t>(wire::type_of(m)))));
}

Status SocketSupervisorLink::drain_unsolicited() {
    for (;;) {
        auto in = receive(0);
        if (!in) return std::move(in).error();
        if (!*in) return {};
        if (auto handled = handle_unsolicited(**in); !handled) return handled;
    }
}

std::optional<SocketSupervisorLink::Control> SocketSupervisorLink::next_control() {
    if (control_.empty()) return std::nullopt;
    const Control c = control_.front();
    control_.pop_front();
    return c;
}

Result<SocketSupervisorLink::Incoming> SocketSupervisorLink::await_reply(wire::Type want,
                                                                         wire::Type alternative,
                                                                         std::uint32_t object_id) {
    for (;;) {
        auto in = receive(kReplyTimeoutMs);
        if (!in) return std::move(in).error();
        if (!*in)
            return logic_error(fmt::format("the supervisor did not answer within {} s",
                                           kReplyTimeoutMs / 1000));
        const auto type = wire::type_of((*in)->message);
        if (type == want || type == alternative) {
            if (object_id_of((*in)->message) != object_id)
                return logic_error(fmt::format("the supervisor answered for object {} instead of {}",
                                               object_id_of((*in)->message), object_id));
            return std::move(**in);
        }
        if (auto handled = handle_unsolicited(**in); !handled) return std::move(handled).error();
    }
}

Status SocketSupervisorLink::object_opened(const wire::ObjectDescription& object, int anon_fd) {
    wire::ObjectOpened m;
    static_cast<wire::ObjectDescription&>(m) = object;
    const int fds[] = {anon_fd};
    if (auto sent = send(m, fds); !sent) return sent;
    auto reply = await_reply(wire::Type::object_ack, wire::Type::object_ack, object.object_id);
    if (!reply) return std::move(reply).error();
    return {};
}

Status SocketSupervisorLink::object_copened(std::uint32_t object_id) {
    return send(wire::ObjectCopened{object_id});
}

Status SocketSupervisorLink::object_closed(std::uint32_t object_id) {
    return send(wire::ObjectClosed{object_id});
}

Result<std::optional<SharedObject>> SocketSupervisorLink::query_object(std::uint32_t object_id) {
    if (auto sent = send(wire::ObjectQuery{object_id}); !sent) return std::move(sent).error();
    auto reply = await_reply(wire::Type::object_info, wire::Type::object_unknown, object_id);
    if (!reply) return std::move(reply).error();
    auto* info = std::get_if<wire::ObjectInfo>(&reply->message);
    if (info == nullptr) return std::optional<SharedObject>{};
    return std::optional<SharedObject>{SharedObject{*info, std::move(reply->fds.front())}};
}

}  // namespace cfs::worker
