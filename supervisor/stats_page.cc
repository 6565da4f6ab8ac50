#include "supervisor/stats_page.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <utility>

#include <fmt/format.h>

namespace cfs::supervisor {
namespace {

// The page is mapped read-only here; an atomic load never writes, but atomic_ref
// wants a non-const object.
template <class T>
T load(const T& field, std::memory_order order = std::memory_order_relaxed) {
    return std::atomic_ref<T>(const_cast<T&>(field)).load(order);
}

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
    const std::uint64_t sum = a + b;
    return sum < a ? UINT64_MAX : sum;
}

constexpr std::uint64_t kClockSlackNs = 1'000'000'000;

}  // namespace

RequestCounts& RequestCounts::operator+=(const RequestCounts& more) {
    for (std::size_t i = 0; i < requests.size(); ++i) requests[i] = saturating_add(requests[i], more.requests[i]);
    other = saturating_add(other, more.other);
    bytes_written = saturating_add(bytes_written, more.bytes_written);
    fetch_errors = saturating_add(fetch_errors, more.fetch_errors);
    for (std::size_t i = 0; i < read_latency.size(); ++i)
        read_latency[i] = saturating_add(read_latency[i], more.read_latency[i]);
    return *this;
}

PageReading read_page(const stats::PageLayout& page, std::uint64_t not_before_ns, std::uint64_t now_ns) {
    PageReading r;
    if (load(page.magic) != stats::kMagic || load(page.layout) != stats::kLayout) {
        return r;
    }
    r.header_ok = true;
    const auto count = [](const std::uint64_t& field) { return std::min(load(field), kMaxCount); };
    for (std::size_t i = 0; i < stats::kOpcodes; ++i) r.counts.requests[i] = count(page.requests[i]);
    r.counts.other = count(page.other);
    r.counts.bytes_written = std::min(load(page.bytes_written), kMaxBytes);
    r.counts.fetch_errors = count(page.fetch_errors);
    for (std::size_t i = 0; i < stats::kLatencyBuckets; ++i) r.counts.read_latency[i] = count(page.read_latency[i]);

    // The three fields of the request in hand are one only if its start reads the
    // same around them (the worker writes the start last and clears it when done).
    const std::uint64_t started = load(page.current_started_ns, std::memory_order_acquire);
    InFlight in_flight{load(page.current_opcode), load(page.current_object), started};
    std::atomic_thread_fence(std::memory_order_acquire);
    const bool steady = load(page.current_started_ns) == started;
    const std::uint64_t earliest = not_before_ns > kClockSlackNs ? not_before_ns - kClockSlackNs : 0;
    if (started != 0 && steady && started >= earliest && started <= now_ns + kClockSlackNs)
        r.in_flight = in_flight;
    return r;
}

std::string opcode_name(std::uint32_t opcode) {
    switch (opcode) {
        case stats::kOpcodeOpen: return "OPEN";
        case stats::kOpcodeClose: return "CLOSE";
        case stats::kOpcodeRead: return "READ";
        default: return fmt::format("opcode {}", opcode);
    }
}

std::optional<double> latency_percentile(const LatencyHistogram& histogram, double q) {
    std::uint64_t total = 0;
    for (const auto n : histogram) total = saturating_add(total, n);
    if (total == 0 || !(q > 0)) return std::nullopt;
    q = std::min(q, 1.0);
    // The rank-th smallest sample, 1-based.
    const double rank = std::max(1.0, std::ceil(q * static_cast<double>(total)));
    double below = 0;
    for (std::size_t i = 0; i < histogram.size(); ++i) {
        const auto n = static_cast<double>(histogram[i]);
        if (n == 0 || below + n < rank) {
            below += n;
            continue;
        }
        const auto lower = static_cast<double>(stats::bucket_lower_ns(i));
        if (i + 1 == histogram.size()) return lower;
        const auto upper = static_cast<double>(stats::bucket_lower_ns(i + 1));
        return lower + (upper - lower) * (rank - below) / n;
    }
    return static_cast<double>(stats::bucket_lower_ns(histogram.size() - 1));  // rounding only
}

Result<StatsPage> StatsPage::create() {
    unique_fd fd(::memfd_create("cfs-worker-stats", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) return sys_error("creating a worker's statistics page (memfd_create)");
    stats::PageLayout header{};
    header.magic = stats::kMagic;
    header.layout = stats::kLayout;
    if (::ftruncate(fd.get(), static_cast<off_t>(stats::kPageBytes)) < 0)
        return sys_error("sizing a worker's statistics page");
    if (::pwrite(fd.get(), &header, sizeof header, 0) != static_cast<ssize_t>(sizeof header))
        return sys_error("writing a worker's statistics page");
    // The worker can neither shrink the page under our mapping (our next read would
    // fault with SIGBUS) nor grow it, nor lift or add seals.
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
        return sys_error("sealing a worker's statistics page");
    void* p = ::mmap(nullptr, stats::kPageBytes, PROT_READ, MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED) return sys_error("mapping a worker's statistics page");
    return StatsPage(std::move(fd), static_cast<const stats::PageLayout*>(p));
}

StatsPage::StatsPage(StatsPage&& other) noexcept
    : fd_(std::move(other.fd_)), page_(std::exchange(other.page_, nullptr)) {}

StatsPage& StatsPage::operator=(StatsPage&& other) noexcept {
    if (this != &other) {
        if (page_ != nullptr) ::munmap(const_cast<stats::PageLayout*>(page_), stats::kPageBytes);
        fd_ = std::move(other.fd_);
        page_ = std::exchange(other.page_, nullptr);
    }
    return *this;
}

StatsPage::~StatsPage() {
    if (page_ != nullptr) ::munmap(const_cast<stats::PageLayout*>(page_), stats::kPageBytes);
}

}  // namespace cfs::supervisor
