#include "supervisor/stats_book.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/kernel_msg.h"
#include "common/log.h"

namespace cfs::supervisor {
namespace {

double seconds_between(std::uint64_t earlier_ns, std::uint64_t later_ns) {
    return later_ns > earlier_ns ? static_cast<double>(later_ns - earlier_ns) / 1e9 : 0.0;
}

std::string with_object(std::uint32_t id, const std::string& described) {
    return described.empty() ? fmt::format("object {}", id) : fmt::format("object {} ({})", id, kmsg::printable(described));
}

}  // namespace

ServedFigures served_figures(const RequestCounts& counts) {
    ServedFigures f;
    f.open = counts.requests[stats::kOpcodeOpen];
    f.close = counts.requests[stats::kOpcodeClose];
    f.read = counts.requests[stats::kOpcodeRead];
    f.other = counts.other;
    f.bytes = counts.bytes_written;
    f.fetch_errors = counts.fetch_errors;
    for (const auto n : counts.read_latency) f.read_samples = f.read_samples + n < n ? UINT64_MAX : f.read_samples + n;
    const auto us = [&](double q) -> std::optional<double> {
        if (auto ns = latency_percentile(counts.read_latency, q)) return *ns / 1000.0;
        return std::nullopt;
    };
    f.read_p50_us = us(0.50);
    f.read_p90_us = us(0.90);
    f.read_p99_us = us(0.99);
    return f;
}

StatsBook::Slot& StatsBook::slot(unsigned id) {
    if (id >= slots_.size()) slots_.resize(id + 1);
    return slots_[id];
}

Result<int> StatsBook::open_page(unsigned id) {
    retire(id);
    auto page = StatsPage::create();
    if (!page) return std::move(page).error();
    Slot& s = slot(id);
    s.page.emplace(std::move(*page));
    s.warned_started_ns = 0;
    s.corrupt_logged = false;
    return s.page->fd();
}

void StatsBook::retire(unsigned id) {
    if (id >= slots_.size() || !slots_[id].page) return;
    Slot& s = slots_[id];
    // Only the counts: the request a dead worker had in hand is delivered again.
    const auto last = read_page(s.page->layout(), 0, 0);
    s.retired += last.counts;
    retired_ += last.counts;
    retired_pages_.push_back(std::move(*s.page));
    s.page.reset();
}

PageReading StatsBook::read(const Slot& s, const WorkerSlot& worker, std::uint64_t now_ns) const {
    if (!s.page) return {};
    return read_page(s.page->layout(), monotonic_ns(worker.started), now_ns);
}

void StatsBook::fill(StatusSnapshot& snapshot, const std::vector<WorkerSlot>& workers, Clock::time_point now,
                     const DescribeObject& describe) const {
    const std::uint64_t now_ns = monotonic_ns(now);
    RequestCounts total = retired_;
    snapshot.stuck_after_s = std::chrono::duration<double>(kStuckAfter).count();
    for (const auto& w : workers) {
        RequestCounts in_slot;
        bool ok = true;
        if (w.id < slots_.size()) {
            const Slot& s = slots_[w.id];
            in_slot = s.retired;
            if (s.page) {
                const auto r = read(s, w, now_ns);
                ok = r.header_ok;
                in_slot += r.counts;
                total += r.counts;
                if (r.in_flight && w.running()) {
                    InFlightRequest f;
                    f.worker = w.id;
                    f.pid = w.pid;
                    f.opcode = opcode_name(r.in_flight->opcode);
                    f.object_id = r.in_flight->object_id;
                    f.object = describe(f.object_id);
                    f.age_s = seconds_between(r.in_flight->started_ns, now_ns);
                    f.stuck = f.age_s >= snapshot.stuck_after_s;
                    snapshot.in_flight.push_back(std::move(f));
                }
            }
        }
        for (auto& ws : snapshot.workers)
            if (ws.id == w.id) {
                ws.served = served_figures(in_slot);
                ws.stats_ok = ok;
            }
    }
    std::sort(snapshot.in_flight.begin(), snapshot.in_flight.end(),
              [](const InFlightRequest& a, const InFlightRequest& b) { return a.age_s > b.age_s; });
    snapshot.served = served_figures(total);
}

void StatsBook::check_stuck(const std::vector<WorkerSlot>& workers, Clock::time_point now,
                            const DescribeObject& describe) {
    next_check_ = now + kStuckCheckInterval;
    const std::uint64_t now_ns = monotonic_ns(now);
    const auto stuck_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(kStuckAfter).count());
    for (const auto& w : workers) {
        if (w.id >= slots_.size() || !w.running()) continue;
        Slot& s = slots_[w.id];
        const auto r = read(s, w, now_ns);
        if (!r.header_ok && s.page && !s.corrupt_logged) {
            s.corrupt_logged = true;
            log::warning("worker {} (pid {}) overwrote the header of its statistics page; its figures are not "
                         "counted until it is replaced", w.id, w.pid);
        }
        const std::uint64_t started = r.in_flight ? r.in_flight->started_ns : 0;
        if (s.warned_started_ns != 0 && s.warned_started_ns != started) {
            log::info("worker {} (pid {}) is done with the request it was stuck on (after at least {:.0f} s)", w.id,
                      w.pid, seconds_between(s.warned_started_ns, now_ns));
            s.warned_started_ns = 0;
        }
        if (started == 0 || started == s.warned_started_ns || now_ns < started || now_ns - started < stuck_ns)
            continue;
        s.warned_started_ns = started;
        log::warning("worker {} (pid {}) has been answering a {} of {} for {:.0f} s; its reader is waiting",
                     w.id, w.pid, opcode_name(r.in_flight->opcode),
                     with_object(r.in_flight->object_id, describe(r.in_flight->object_id)),
                     seconds_between(started, now_ns));
    }
}

}  // namespace cfs::supervisor
