// Supervisor-side tests on real socketpairs: worker slots whose other end the test
// holds, and what the supervisor sent down one.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <optional>
#include <span>
#include <vector>

#include <doctest/doctest.h>

#include "common/fd_passing.h"
#include "common/unique_fd.h"
#include "common/worker_protocol.h"
#include "supervisor/supervisor_state.h"

namespace cfs::testing {

struct Received {
    wire::Message message;
    std::vector<unique_fd> fds;
};

// Gives `state` `n` worker slots (ids 0..n-1, fake pids from `first_pid`, starting),
// each with a non-blocking socketpair, so "nothing was sent" is EAGAIN; returns the
// worker ends, in slot order.
inline std::vector<unique_fd> add_worker_slots(supervisor::SupervisorState& state, unsigned n, pid_t first_pid) {
    std::vector<unique_fd> worker_ends;
    state.workers.resize(n);
    for (unsigned i = 0; i < n; ++i) {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
        auto& w = state.workers[i];
        w.id = i;
        w.pid = first_pid + static_cast<pid_t>(i);
        w.state = supervisor::WorkerState::starting;
        w.socket = unique_fd(sv[0]);
        worker_ends.emplace_back(sv[1]);
    }
    return worker_ends;
}

// The next message the supervisor sent to the worker end `fd`, decoded, with its
// fds; nothing if none waits.
inline std::optional<Received> receive_sent(int fd) {
    std::array<std::byte, wire::kMaxMessageSize> buffer{};
    auto r = receive_message(fd, buffer, kMaxFdsPerMessage);
    if (!r) {
        REQUIRE_MESSAGE(r.error().errnum == EAGAIN, r.error().message());
        return std::nullopt;
    }
    REQUIRE(r->size > 0);
    auto m = wire::decode(std::span(buffer).first(r->size), r->fds.size());
    REQUIRE_MESSAGE(m.ok(), m.error().message());
    return Received{std::move(*m), std::move(r->fds)};
}

}  // namespace cfs::testing
