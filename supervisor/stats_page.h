// The supervisor's side of a worker's statistics page (common/worker_stats.h):
// making it, and reading it as the untrusted input it is.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"
#include "common/worker_stats.h"

namespace cfs::supervisor {

// Any figure read from a page is clamped to this: far above what a worker could
// reach in years (2^48 requests; 2^60 bytes), low enough that sums over any number
// of workers and restarts cannot wrap (they saturate anyway).
inline constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 48;
inline constexpr std::uint64_t kMaxBytes = std::uint64_t{1} << 60;

using LatencyHistogram = std::array<std::uint64_t, stats::kLatencyBuckets>;

// What one worker (or several, summed) served.
struct RequestCounts {
    std::array<std::uint64_t, stats::kOpcodes> requests{};  // by kernel opcode
    std::uint64_t other = 0;
    std::uint64_t bytes_written = 0;
    std::uint64_t fetch_errors = 0;  // remote blob source: failed attempts
    LatencyHistogram read_latency{};

    RequestCounts& operator+=(const RequestCounts& more);  // saturating
};

// The request a worker has in hand.
struct InFlight {
    std::uint32_t opcode = 0;  // a worker's word: only named through opcode_name
    std::uint32_t object_id = 0;
    std::uint64_t started_ns = 0;  // CLOCK_MONOTONIC
};

struct PageReading {
    // False when the header was overwritten: nothing else in the page is believed,
    // and the figures are all zero.
    bool header_ok = false;
    RequestCounts counts;
    std::optional<InFlight> in_flight;
};

// Reads a page with atomic loads and validates it. `not_before_ns` and `now_ns`
// (CLOCK_MONOTONIC) bound a believable start time of the request in hand: one
// outside [not_before_ns - 1 s, now_ns + 1 s] is dropped. Never fails, never
// indexes anything with a number from the page.
[[nodiscard]] PageReading read_page(const stats::PageLayout& page, std::uint64_t not_before_ns, std::uint64_t now_ns);

// "OPEN", "CLOSE", "READ", or "opcode N" for anything else.
[[nodiscard]] std::string opcode_name(std::uint32_t opcode);

// The latency (ns) below which a fraction `q` (0 < q <= 1) of the samples lie,
// interpolated linearly inside the bucket that holds that rank; nullopt without
// samples. The open-ended top bucket answers its lower bound (17.2 s, "at least").
[[nodiscard]] std::optional<double> latency_percentile(const LatencyHistogram& histogram, double q);

// One worker's page: a sealed memfd holding the header, mapped read-only here.
class StatsPage {
public:
    [[nodiscard]] static Result<StatsPage> create();
    StatsPage(StatsPage&& other) noexcept;
    StatsPage& operator=(StatsPage&& other) noexcept;
    StatsPage(const StatsPage&) = delete;
    StatsPage& operator=(const StatsPage&) = delete;
    ~StatsPage();

    // The memfd to hand the worker (Init).
    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] const stats::PageLayout& layout() const { return *page_; }

private:
    StatsPage(unique_fd fd, const stats::PageLayout* page) : fd_(std::move(fd)), page_(page) {}
    unique_fd fd_;
    const stats::PageLayout* page_ = nullptr;
};

}  // namespace cfs::supervisor
