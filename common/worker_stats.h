// A worker's statistics page: one page of shared memory per worker process, written
// by the worker, read by the supervisor (`cfsupervisor status`, stuck-request
// warnings).
//
// Why shared memory, as Envoy's hot restart shares its stats: a READ must cost the
// worker nothing beyond the work itself. A message per request to the supervisor
// would double the syscalls on the data path; a page costs a few plain stores and
// two clock_gettime (vDSO) per request (bench/micro/request_stats_bench.cc: 50 to
// 130 ns per request on a shared 2-core machine, where a READ takes hundreds of us).
// (Without a vDSO clocksource clock_gettime is a real system call, which
// policy/worker.seccomp allows for CLOCK_MONOTONIC.) And the supervisor can look at
// a worker stuck inside a request, which answers no message: its "current request"
// is still there to read.
//
// Who does what:
// - The supervisor creates a memfd per worker start (supervisor/stats_page.h),
//   writes the header (magic, layout), sizes it to kPageBytes and seals it
//   (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL): a compromised worker cannot shrink
//   it under the supervisor's mapping, which would make the supervisor's next read
//   fault (SIGBUS). It maps it read-only and hands it to the worker in Init.
// - The worker checks the header, maps the page MAP_SHARED before it enters its
//   sandbox and from then on only stores into it (worker/request_stats.h), with
//   relaxed atomics: it is the only writer, so a load and a store, no locked
//   read-modify-write.
// - The supervisor reads it with atomic loads and trusts nothing in it: the header
//   must still match, every number is clamped, and no number from the page is ever
//   used as an index. What a worker writes here can make its own figures wrong,
//   never the supervisor misbehave. When the worker dies the supervisor folds its
//   last figures into totals that outlive it, then unmaps the page.
//
// The layout is plain integers (PageLayout), accessed through std::atomic_ref, so
// the memory image is the format; kLayout changes whenever it does.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace cfs::stats {

inline constexpr std::uint32_t kMagic = 0x53534643;  // "CFSS", little-endian
// 2: fetch_errors added (remote blobs, worker/http_backend.h).
inline constexpr std::uint32_t kLayout = 2;
inline constexpr std::size_t kPageBytes = 4096;

// Requests counted per kernel opcode (kmsg::Opcode: OPEN 0, CLOSE 1, READ 2);
// anything else (a malformed message) is counted apart.
inline constexpr std::size_t kOpcodes = 3;
inline constexpr std::uint32_t kOpcodeOpen = 0;
inline constexpr std::uint32_t kOpcodeClose = 1;
inline constexpr std::uint32_t kOpcodeRead = 2;

// READ latency histogram, from the read() of the request to its READ_COMPLETE, in
// nanoseconds. Log-scale buckets with 4 per power of two: each bucket is at most
// 19% wide, so a percentile interpolated inside one is off by less than that,
// anywhere between 8 us and 17 s:
//   bucket 0                 [0, 2^13 ns)            below 8.2 us
//   bucket 1 + 4*(e-13) + s  [(4+s) * 2^(e-2), (5+s) * 2^(e-2))   e = 13..33, s = 0..3
//   bucket kLatencyBuckets-1 [2^34 ns, inf)          17.2 s and more
// 86 buckets of 8 bytes: the whole page stays well under 4 KiB.
inline constexpr unsigned kLatencyMinExp = 13;
inline constexpr unsigned kLatencyMaxExp = 34;
inline constexpr unsigned kLatencySubBuckets = 4;
inline constexpr std::size_t kLatencyBuckets = 1 + (kLatencyMaxExp - kLatencyMinExp) * kLatencySubBuckets + 1;

[[nodiscard]] constexpr std::size_t latency_bucket(std::uint64_t ns) {
    if (ns < (std::uint64_t{1} << kLatencyMinExp)) return 0;
    unsigned e = 63;
    while ((ns >> e) == 0) --e;
    if (e >= kLatencyMaxExp) return kLatencyBuckets - 1;
    const auto sub = static_cast<std::size_t>((ns >> (e - 2)) & (kLatencySubBuckets - 1));
    return 1 + (e - kLatencyMinExp) * kLatencySubBuckets + sub;
}
// Smallest latency that falls in `bucket` (bucket < kLatencyBuckets).
[[nodiscard]] constexpr std::uint64_t bucket_lower_ns(std::size_t bucket) {
    if (bucket == 0) return 0;
    if (bucket >= kLatencyBuckets - 1) return std::uint64_t{1} << kLatencyMaxExp;
    const std::size_t e = kLatencyMinExp + (bucket - 1) / kLatencySubBuckets;
    const std::size_t sub = (bucket - 1) % kLatencySubBuckets;
    return (kLatencySubBuckets + sub) << (e - 2);
}
static_assert(latency_bucket(bucket_lower_ns(kLatencyBuckets - 2)) == kLatencyBuckets - 2);
static_assert(latency_bucket(bucket_lower_ns(kLatencyBuckets - 1) - 1) == kLatencyBuckets - 2);

struct PageLayout {
    // Written once by the supervisor before the worker starts.
    std::uint32_t magic;
    std::uint32_t layout;
    // Requests answered, per opcode; `other`: messages with none of those opcodes.
    std::uint64_t requests[kOpcodes];
    std::uint64_t other;
    // Bytes written into cache files (whole blocks, as written).
    std::uint64_t bytes_written;
    std::uint64_t read_latency[kLatencyBuckets];
    // The request in hand: CLOCK_MONOTONIC ns when it was read, 0 when idle. The
    // worker stores opcode and object first, then started_ns (release); a reader
    // takes the three as one only when started_ns reads the same before and after.
    std::uint64_t current_started_ns;
    std::uint32_t current_opcode;
    std::uint32_t current_object;
    // Failed fetches from a remote blob source (blobs.url), each attempt counted,
    // retried or not.
    std::uint64_t fetch_errors;
};
static_assert(std::is_standard_layout_v<PageLayout> && std::is_trivially_copyable_v<PageLayout>);
static_assert(sizeof(PageLayout) <= kPageBytes);
static_assert(alignof(PageLayout) == 8 && std::atomic_ref<std::uint64_t>::required_alignment <= 8);
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free &&
              std::atomic_ref<std::uint32_t>::is_always_lock_free);

}  // namespace cfs::stats
