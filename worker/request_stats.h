// The worker's side of its statistics page (common/worker_stats.h): what each
// request costs is a clock_gettime (vDSO) when it is read and another when it is
// answered, and a few plain stores. Nothing here can fail or stop the worker: with
// no usable page it records nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/result.h"
#include "common/unique_fd.h"
#include "common/worker_stats.h"

namespace cfs::worker {

// The page from Init, mapped MAP_SHARED read-write; unmapped when this goes.
class MappedStatsPage {
public:
    MappedStatsPage() = default;
    MappedStatsPage(MappedStatsPage&& other) noexcept;
    MappedStatsPage& operator=(MappedStatsPage&& other) noexcept;
    ~MappedStatsPage();
    [[nodiscard]] stats::PageLayout* get() const { return page_; }

    // Checks that `fd` is at least a page long and carries this build's header
    // (a page of another layout is left alone), then maps it. Must run before the
    // sandbox, which denies nothing mmap needs but is no place for surprises.
    [[nodiscard]] static Result<MappedStatsPage> map(const unique_fd& fd);

private:
    explicit MappedStatsPage(stats::PageLayout* page) : page_(page) {}
    stats::PageLayout* page_ = nullptr;
};

// One failed fetch from the remote blob source (worker/http_backend.h); `page` null:
// nothing.
void count_fetch_error(stats::PageLayout* page);

// CLOCK_MONOTONIC in nanoseconds; the supervisor's steady_clock is the same clock.
[[nodiscard]] std::uint64_t monotonic_ns();

class RequestStats {
public:
    using Clock = std::uint64_t (*)();
    // `page` null: records nothing. `now`: replaceable in tests.
    explicit RequestStats(stats::PageLayout* page, Clock now = monotonic_ns) : page_(page), now_(now) {}

    // A request was just read from the device: it is now "in hand".
    void begin(std::span<const std::byte> message);
    // It was answered; `bytes_written_total`: every byte this worker wrote into cache
    // files so far (RequestHandler's counter).
    void end(std::uint64_t bytes_written_total);
    // Bytes written outside any request (read-ahead), counted as they are written.
    void written(std::uint64_t bytes_written_total);

private:
    stats::PageLayout* page_;
    Clock now_;
    std::uint64_t started_ns_ = 0;
    std::uint32_t opcode_ = 0;
    bool known_opcode_ = false;
};

}  // namespace cfs::worker
