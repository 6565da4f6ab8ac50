#include "supervisor/supervisor_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <string>

#include "common/fd_passing.h"
#include "common/log.h"

namespace cfs::supervisor {

std::uint64_t monotonic_ns(Clock::time_point t) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    return ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
}

Clock::time_point from_monotonic_ns(std::uint64_t ns) {
    return Clock::time_point{std::chrono::duration_cast<Clock::duration>(
        std::chrono::nanoseconds(static_cast<std::int64_t>(ns)))};
}

std::string_view state_name(WorkerState s) {
    switch (s) {
        case WorkerState::absent: return "absent";
        case WorkerState::starting: return "starting";
        case WorkerState::paused: return "paused";
        case WorkerState::serving: return "serving";
        case WorkerState::pausing: return "pausing";
    }
    return "?";
}

bool WorkerSlot::proved_stable(Clock::time_point now) const {
    if (made_progress) return true;
    if (killed_by_us || !ready()) return false;
    return now - serving_since.value_or(started) >= kStableUptime;
}

bool forgive_stable_workers(std::span<WorkerSlot> workers, Clock::time_point now, unsigned crash_loop) {
    bool looping = false;
    for (WorkerSlot& w : workers) {
        if (w.running() && w.proved_stable(now)) w.consecutive_failures = 0;
        looping = looping || w.consecutive_failures >= crash_loop;
    }
    return looping;
}

Status SupervisorState::send(WorkerSlot& to, const wire::Message& m, std::span<const int> fds) {
    if (auto flushed = flush_owed(to); !flushed) return flushed;
    const auto bytes = wire::encode(m);
    return send_message(to.socket.get(), bytes, fds);
}

Status SupervisorState::flush_forgets(WorkerSlot& to, std::size_t at_most) {
    if (!to.running() || !to.socket) return logic_error("worker is not connected");
    for (std::size_t sent_count = 0; sent_count < at_most && !to.to_forget.empty(); ++sent_count) {
        const auto bytes = wire::encode(wire::ObjectForget{to.to_forget.front()});
        if (auto sent = send_message(to.socket.get(), bytes, {}); !sent) return sent;
        to.to_forget.pop_front();
        if (to.reply_owed && to.reply_owed->after_forgets > 0) --to.reply_owed->after_forgets;
    }
    return {};
}

Status SupervisorState::reply(WorkerSlot& to, const wire::Message& m, std::span<const int> fds) {
    if (to.reply_owed) return logic_error("sent a request before reading the answer to its last one");
    auto sent = send(to, m, fds);
    if (sent || sent.error().errnum != EAGAIN) return sent;
    WorkerSlot::OwedReply owed{wire::encode(m), {}, to.to_forget.size()};
    for (const int fd : fds) {
        unique_fd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
        if (!copy) return sys_error("keeping an fd for an answer its full socket cannot take yet");
        owed.fds.push_back(std::move(copy));
    }
    to.reply_owed = std::move(owed);
    return {};
}

Status SupervisorState::pause(WorkerSlot& to) {
    to.pause_owed = true;
    auto sent = flush_owed(to);
    if (!sent && sent.error().errnum == EAGAIN) return {};
    return sent;
}

Status SupervisorState::flush_owed(WorkerSlot& to) {
    if (to.reply_owed) {
        if (auto flushed = flush_forgets(to, to.reply_owed->after_forgets); !flushed) return flushed;
        std::vector<int> fds;
        for (const unique_fd& fd : to.reply_owed->fds) fds.push_back(fd.get());
        if (auto sent = send_message(to.socket.get(), to.reply_owed->bytes, fds); !sent) return sent;
        to.reply_owed.reset();
    }
    if (auto flushed = flush_forgets(to); !flushed) return flushed;
    if (!to.pause_owed) return {};
    if (auto sent = send_message(to.socket.get(), wire::encode(wire::Pause{}), {}); !sent) return sent;
    to.pause_owed = false;
    return {};
}

void SupervisorState::broadcast_forget(std::uint32_t object_id, const WorkerSlot* except) {
    for (auto& w : workers) {
        if (&w == except || !w.running() || !w.socket) continue;
        w.to_forget.push_back(object_id);
        if (auto sent = flush_owed(w); !sent && sent.error().errnum != EAGAIN) {
            // A worker we cannot reach is dying; its copies close with it.
            log::debug("worker {}: {}", w.id, sent.error().message());
            w.to_forget.clear();
        }
    }
}

bool is_cachefiles_anon_fd(int fd) {
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    std::array<char, 64> target{};
    const ssize_t n = ::readlink(link.c_str(), target.data(), target.size() - 1);
    return n > 0 && std::string_view(target.data(), static_cast<std::size_t>(n)) == "anon_inode:[cachefiles]";
}

bool cachefiles_object_withdrawn(int anon_fd) {
    // The position this moves is never used: anon fds are written with pwrite.
    return ::lseek(anon_fd, 0, SEEK_DATA) < 0 && errno == ENOBUFS;
}

}  // namespace cfs::supervisor
