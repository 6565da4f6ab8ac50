// Replacing workers without a reader seeing an error: `cfsupervisor restart-workers`
// (and a reload that changes workers.user, or shrinks the slots).
//
// A paused worker holds no request, so letting it go needs no `restore` and drops no
// object (the supervisor keeps its copy of every anon fd). So one worker at a time:
//   1. it is marked retiring;
//   2. if it serves, a replacement is resumed first (a paused spare; with no spares
//      configured, one extra slot is started for the duration), then it gets Pause;
//   3. once it answered Paused (or was paused anyway) its socket is closed, which is
//      how a worker is told to leave; its exit is no failure and needs no failover;
//   4. its slot starts a new worker (from the worker executable re-opened when the
//      rolling restart began), which waits paused as a spare;
//   5. once that one is up, the next worker is marked.
// At least as many workers as workers.count serve throughout. A worker that dies on
// the way is failed over as always (README "Failover"): a retiring worker paused by
// the failover is resumed again if nothing else can serve.
//
// plan_retirements and RollingRestart are pure functions of the slots (tested alone);
// supervisor.cc carries out what they say.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "supervisor/supervisor_state.h"

namespace cfs::supervisor {

// How long one worker may take to be replaced (Pause, exit, start, sandbox, Ready).
// Generous: a replacement in a crash loop backs off up to 30 s between starts.
inline constexpr auto kReplaceTimeout = std::chrono::seconds(60);

struct RetirePlan {
    std::vector<unsigned> pause;    // retiring and serving, with enough others serving: send Pause
    std::vector<unsigned> dismiss;  // retiring and holding no request: close its socket
    // Serving beyond `wanted` (a reload lowered workers.count): send Pause; it stays
    // as a spare (or goes, if its slot is no longer wanted either).
    std::vector<unsigned> to_spare;
};

// Never during a failover (which pauses everyone itself and may need a retiring
// worker resumed again), and never below `wanted` other workers serving.
[[nodiscard]] RetirePlan plan_retirements(std::span<const WorkerSlot> workers, bool failover_under_way,
                                          unsigned wanted);

class RollingRestart {
public:
    // Records every running worker to be replaced: paused ones first, so that the
    // replacements of serving ones are already new processes.
    explicit RollingRestart(std::span<const WorkerSlot> workers);

    enum class Outcome { running, done, failed };
    // Called after every event: marks the next worker retiring once the one before
    // was replaced. `failed` when one was not replaced within kReplaceTimeout; the
    // worker being replaced, if still there, then stays (not retiring).
    [[nodiscard]] Outcome advance(std::span<WorkerSlot> workers, Clock::time_point now);

    [[nodiscard]] std::optional<Clock::time_point> deadline() const;
    [[nodiscard]] std::size_t total() const { return targets_.size(); }
    [[nodiscard]] std::size_t replaced() const { return replaced_; }
    // Why it failed (empty unless advance said failed).
    [[nodiscard]] const std::string& failure() const { return failure_; }

private:
    struct Target {
        unsigned slot;
        pid_t pid;
    };
    std::vector<Target> targets_;
    std::size_t next_ = 0;
    std::size_t replaced_ = 0;
    std::optional<Target> current_;
    Clock::time_point current_deadline_{};
    std::string failure_;
};

}  // namespace cfs::supervisor
