#include "worker/request_stats.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include <atomic>
#include <utility>

#include <fmt/format.h>

#include "common/kernel_msg.h"

namespace cfs::worker {
namespace {

template <class T>
void store(T& field, T value, std::memory_order order = std::memory_order_relaxed) {
    std::atomic_ref<T>(field).store(value, order);
}
template <class T>
T load(T& field) {
    return std::atomic_ref<T>(field).load(std::memory_order_relaxed);
}
// The worker is the page's only writer: a load and a store, no locked instruction.
void bump(std::uint64_t& field, std::uint64_t by = 1) { store(field, load(field) + by); }

}  // namespace

MappedStatsPage::MappedStatsPage(MappedStatsPage&& other) noexcept : page_(std::exchange(other.page_, nullptr)) {}
MappedStatsPage& MappedStatsPage::operator=(MappedStatsPage&& other) noexcept {
    if (this != &other) {
        if (page_ != nullptr) ::munmap(page_, stats::kPageBytes);
        page_ = std::exchange(other.page_, nullptr);
    }
    return *this;
}
MappedStatsPage::~MappedStatsPage() {
    if (page_ != nullptr) ::munmap(page_, stats::kPageBytes);
}

Result<MappedStatsPage> MappedStatsPage::map(const unique_fd& fd) {
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return sys_error("examining the statistics page");
    if (!S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(stats::kPageBytes))
        return logic_error(fmt::format("the statistics page is {} bytes, expected {}", st.st_size, stats::kPageBytes));
    void* p = ::mmap(nullptr, stats::kPageBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED) return sys_error("mapping the statistics page");
    MappedStatsPage page(static_cast<stats::PageLayout*>(p));
    const std::uint32_t magic = load(page.page_->magic), layout = load(page.page_->layout);
    if (magic != stats::kMagic || layout != stats::kLayout)
        return logic_error(fmt::format("the statistics page has magic {:#x} layout {}, this worker writes {:#x} layout {}",
                                       magic, layout, stats::kMagic, stats::kLayout));
    return page;
}

std::uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000U + static_cast<std::uint64_t>(ts.tv_nsec);
}

void count_fetch_error(stats::PageLayout* page) {
    if (page != nullptr) bump(page->fetch_errors);
}

void RequestStats::begin(std::span<const std::byte> message) {
    if (page_ == nullptr) return;
    const auto header = kmsg::peek_header(message);
    opcode_ = header ? header->opcode : 0;
    known_opcode_ = header && header->opcode < stats::kOpcodes;
    started_ns_ = now_();
    store(page_->current_opcode, opcode_);
    store(page_->current_object, header ? header->object_id : 0);
    // Last, and a release: a reader that sees this start sees the fields above.
    // 0 means idle, so a clock reading 0 (never, in practice) is nudged.
    store(page_->current_started_ns, started_ns_ == 0 ? 1 : started_ns_, std::memory_order_release);
}

void RequestStats::end(std::uint64_t bytes_written_total) {
    if (page_ == nullptr) return;
    if (!known_opcode_) {
        bump(page_->other);
    } else {
        bump(page_->requests[opcode_]);
        if (opcode_ == stats::kOpcodeRead) {
            const std::uint64_t now = now_();
            bump(page_->read_latency[stats::latency_bucket(now > started_ns_ ? now - started_ns_ : 0)]);
        }
    }
    store(page_->bytes_written, bytes_written_total);
    store(page_->current_started_ns, std::uint64_t{0}, std::memory_order_release);
}

void RequestStats::written(std::uint64_t bytes_written_total) {
    if (page_ != nullptr) store(page_->bytes_written, bytes_written_total);
}

}  // namespace cfs::worker
