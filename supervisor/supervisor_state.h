// What the supervisor knows: its workers and the objects they opened. Shared by the
// event loop (supervisor.cc) and the worker message handlers (worker_dispatch.cc).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "common/worker_protocol.h"
#include "supervisor/object_registry.h"

namespace cfs::supervisor {

using Clock = std::chrono::steady_clock;

struct WorkerSlot {
    unsigned id = 0;
    // While a process runs in this slot:
    pid_t pid = -1;
    unique_fd pidfd;
    unique_fd socket;
    bool ready = false;
    Clock::time_point started{};
    // Restart bookkeeping:
    unsigned consecutive_failures = 0;
    std::optional<Clock::time_point> restart_at;
    std::uint64_t restarts = 0;
    std::string last_exit;

    [[nodiscard]] bool running() const { return pid > 0; }
};

struct SupervisorState {
    int device = -1;
    ObjectRegistry objects;
    std::vector<WorkerSlot> workers;
    // Whether an fd a worker sent is really a cachefiles anon fd; replaceable in tests.
    std::function<bool(int fd)> is_cache_anon_fd;

    [[nodiscard]] Status send(WorkerSlot& to, const wire::Message& m, std::span<const int> fds = {});
    // Tells every running worker except `except` to close its copy of an object.
    void broadcast_forget(std::uint32_t object_id, const WorkerSlot* except);
};

// Reads /proc/self/fd/N: a cachefiles anon fd links to "anon_inode:[cachefiles]".
[[nodiscard]] bool is_cachefiles_anon_fd(int fd);

}  // namespace cfs::supervisor
