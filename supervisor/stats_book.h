// Worker statistics as the supervisor keeps them: one page per running worker
// (stats_page.h), and the figures of the workers that died, folded into totals per
// slot and overall when each dies, so `cfsupervisor status` counts everything
// served since this supervisor started. It also watches for requests in hand too
// long: a reader waits on each, so each is logged once, naming worker, object and
// age, and shown in status.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "supervisor/stats_page.h"
#include "supervisor/status.h"
#include "supervisor/supervisor_state.h"

namespace cfs::supervisor {

// A request in hand this long is "stuck": logged once and flagged in status.
inline constexpr auto kStuckAfter = std::chrono::seconds(30);
// How often the pages are looked at for stuck requests (so a warning comes within
// kStuckAfter + kStuckCheckInterval of the read).
inline constexpr auto kStuckCheckInterval = std::chrono::seconds(5);

// Summarises counts for status: the three percentiles from the histogram.
[[nodiscard]] ServedFigures served_figures(const RequestCounts& counts);

class StatsBook {
public:
    // Names an object for logs and status ("volume blob"), or "" if unknown.
    using DescribeObject = std::function<std::string(std::uint32_t object_id)>;

    // A new page for the worker about to start in `slot`; its fd goes in Init. Any
    // page still there is retired first.
    [[nodiscard]] Result<int> open_page(unsigned slot);
    // The worker in `slot` is gone: its last figures join the totals, and its page
    // waits for release_retired(). Nothing happens for a slot without a page.
    void retire(unsigned slot);
    // Unmaps the pages of retired workers. Apart from retire because an unmap is slow
    // in a VM (up to 5 ms measured under TCG: every vCPU's TLB), and a failover does
    // it only once the restore is written.
    void release_retired() { retired_pages_.clear(); }
    [[nodiscard]] std::size_t retired_pages() const { return retired_pages_.size(); }

    // Fills the figures, per slot and overall, and the requests in flight.
    void fill(StatusSnapshot& s, const std::vector<WorkerSlot>& workers, Clock::time_point now,
              const DescribeObject& describe) const;

    // Logs each request in hand longer than kStuckAfter once, and when a request
    // it logged is over. Call at next_check() or later.
    void check_stuck(const std::vector<WorkerSlot>& workers, Clock::time_point now, const DescribeObject& describe);
    [[nodiscard]] Clock::time_point next_check() const { return next_check_; }

private:
    struct Slot {
        std::optional<StatsPage> page;
        RequestCounts retired;  // workers that died in this slot
        // The stuck request last logged (its start), and when it was noticed.
        std::uint64_t warned_started_ns = 0;
        bool corrupt_logged = false;
    };
    Slot& slot(unsigned id);
    [[nodiscard]] PageReading read(const Slot& slot, const WorkerSlot& worker, std::uint64_t now_ns) const;

    std::vector<Slot> slots_;
    std::vector<StatsPage> retired_pages_;
    RequestCounts retired_;  // every worker that died
    Clock::time_point next_check_ = Clock::now() + kStuckCheckInterval;
};

}  // namespace cfs::supervisor
