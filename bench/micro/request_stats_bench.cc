// What the statistics page costs a worker per request: begin() + end() on a real
// page (a sealed memfd, mapped as a worker maps it) with the real clock, against the
// same calls with no page. Prints figures; asserts nothing (timing varies with the
// machine; see the guide's rule on performance).
//
//   build/tests/cfs_bench_request_stats [ITERATIONS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/kernel_msg.h"
#include "supervisor/stats_page.h"
#include "worker/request_stats.h"

using namespace cfs;

namespace {

double ns_per_request(worker::RequestStats& recorder, const std::vector<std::byte>& message, long iterations) {
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < iterations; ++i) {
        recorder.begin(message);
        recorder.end(static_cast<std::uint64_t>(i) * 4096);
    }
    const auto took = std::chrono::steady_clock::now() - start;
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()) /
           static_cast<double>(iterations);
}

}  // namespace

int main(int argc, char** argv) {
    const long iterations = argc > 1 ? std::atol(argv[1]) : 5'000'000;
    auto page = supervisor::StatsPage::create();
    if (!page) {
        std::fprintf(stderr, "%s\n", page.error().message().c_str());
        return 1;
    }
    unique_fd fd(::dup(page->fd()));
    auto mapped = worker::MappedStatsPage::map(fd);
    if (!mapped) {
        std::fprintf(stderr, "%s\n", mapped.error().message().c_str());
        return 1;
    }
    kmsg::Header h{1, static_cast<std::uint32_t>(kmsg::Opcode::read), sizeof h, 7};
    std::vector<std::byte> message(sizeof h);
    std::memcpy(message.data(), &h, sizeof h);

    worker::RequestStats none(nullptr);
    worker::RequestStats real(mapped->get());
    const double without = ns_per_request(none, message, iterations);
    const double with = ns_per_request(real, message, iterations);
    const auto r = supervisor::read_page(page->layout(), 0, 0);
    std::printf("%ld READs: %.1f ns per request with the page (two clock_gettime + stores), %.1f ns without; "
                "counted %llu\n",
                iterations, with, without, static_cast<unsigned long long>(r.counts.requests[2]));
    return r.counts.requests[2] == static_cast<std::uint64_t>(iterations) ? 0 : 1;
}
