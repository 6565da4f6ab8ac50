// worker/read_ahead.h: the window and the record of what was written.
#include <doctest/doctest.h>

#include "worker/read_ahead.h"

namespace {

using cfs::worker::ByteRange;
using cfs::worker::ReadAhead;
using cfs::worker::WrittenRanges;

constexpr std::uint64_t kBlock = 4096;
constexpr std::uint64_t kKiB = 1024;

}  // namespace

TEST_CASE("read-ahead: written ranges merge when they overlap or touch, and answer containment") {
    WrittenRanges w;
    w.add({0, 8192});
    w.add({16384, 20480});
    CHECK(w.size() == 2);
    CHECK(w.contains({0, 4096}));
    CHECK(w.contains({0, 8192}));
    CHECK_FALSE(w.contains({4096, 12288}));
    CHECK_FALSE(w.contains({8192, 16384}));
    CHECK(w.next_written(4096) == 4096);
    CHECK(w.next_written(8192) == 16384);
    CHECK(w.next_written(20480) == UINT64_MAX);
    w.add({8192, 16384});  // touches both
    CHECK(w.size() == 1);
    CHECK(w.contains({0, 20480}));
    w.add({4096, 8192});  // inside
    CHECK(w.size() == 1);
    w.add({});            // empty: nothing
    CHECK(w.size() == 1);
}

TEST_CASE("read-ahead: the record is bounded; a forgotten range only reads as not written") {
    WrittenRanges w;
    for (std::uint64_t i = 0; i < WrittenRanges::kMaxRanges + 10; ++i) w.add({i * 2 * kBlock, i * 2 * kBlock + kBlock});
    CHECK(w.size() == WrittenRanges::kMaxRanges);
    CHECK_FALSE(w.contains({0, kBlock}));  // the lowest went first
    const std::uint64_t last = (WrittenRanges::kMaxRanges + 9) * 2 * kBlock;
    CHECK(w.contains({last, last + kBlock}));
}

TEST_CASE("read-ahead: off copies only the kernel's range, widened to blocks") {
    ReadAhead ra(0, kBlock);
    const auto own = ra.own_range(4100, 10);
    CHECK(own == ByteRange{4096, 8192});
    CHECK(ra.plan_ahead(own, 1 << 20).empty());
}

TEST_CASE("read-ahead: the window starts small after a jump and doubles while READs follow on") {
    ReadAhead ra(1024 * kKiB, kBlock);
    const std::uint64_t size = 64 << 20;
    // First READ: the initial window after its own range.
    auto own = ra.own_range(0, 128 * kKiB);
    auto ahead = ra.plan_ahead(own, size);
    CHECK(ahead == ByteRange{128 * kKiB, 256 * kKiB});
    ra.written(own);
    ra.written(ahead);
    // The reader's next READ starts where the read-ahead ended: the window doubles.
    own = ra.own_range(256 * kKiB, 128 * kKiB);
    ahead = ra.plan_ahead(own, size);
    CHECK(ahead == ByteRange{384 * kKiB, 640 * kKiB});
    ra.written(own);
    ra.written(ahead);
    own = ra.own_range(640 * kKiB, 128 * kKiB);
    ahead = ra.plan_ahead(own, size);
    CHECK(ahead == ByteRange{768 * kKiB, 1280 * kKiB});
    ra.written(own);
    ra.written(ahead);
    // Up to the maximum, and no further.
    for (int i = 0; i < 4; ++i) {
        own = ra.own_range(ahead.end, 128 * kKiB);
        ahead = ra.plan_ahead(own, size);
        ra.written(own);
        ra.written(ahead);
    }
    CHECK(ra.window() == 1024 * kKiB);
    CHECK(ahead.end - ahead.begin == 1024 * kKiB);
    // A jump: back to the initial window.
    own = ra.own_range(32 << 20, 4 * kKiB);
    ahead = ra.plan_ahead(own, size);
    CHECK(ahead == ByteRange{(32 << 20) + 4 * kKiB, (32 << 20) + 4 * kKiB + ReadAhead::kInitialWindow});
}

TEST_CASE("read-ahead: a READ whose range was written ahead copies nothing and leaves the window alone") {
    ReadAhead ra(1024 * kKiB, kBlock);
    auto own = ra.own_range(0, 128 * kKiB);
    auto ahead = ra.plan_ahead(own, 1 << 20);
    ra.written(own);
    ra.written(ahead);
    const auto window = ra.window();
    // Queued while the read-ahead was written.
    own = ra.own_range(128 * kKiB, 128 * kKiB);
    CHECK(own.empty());
    CHECK(ra.plan_ahead(own, 1 << 20).empty());
    CHECK(ra.window() == window);
    // Partly written: the whole range is copied again (cheap, and never wrong).
    CHECK(ra.own_range(200 * kKiB, 128 * kKiB) == ByteRange{200 * kKiB, 328 * kKiB});
}

TEST_CASE("read-ahead: never past the blob's last block, nor over data already written") {
    ReadAhead ra(1024 * kKiB, kBlock);
    // The blob ends inside a block: that block is the last one written ahead.
    auto own = ra.own_range(0, 4 * kKiB);
    CHECK(ra.plan_ahead(own, 10000) == ByteRange{4096, 12288});
    // Written data further on stops the window there.
    ReadAhead rb(1024 * kKiB, kBlock);
    rb.written({64 * kKiB, 72 * kKiB});
    own = rb.own_range(0, 4 * kKiB);
    CHECK(rb.plan_ahead(own, 1 << 20) == ByteRange{4 * kKiB, 64 * kKiB});
    // A READ of the last block: nothing left to read ahead.
    ReadAhead rc(1024 * kKiB, kBlock);
    own = rc.own_range(8192, 4096);
    CHECK(rc.plan_ahead(own, 10000).empty());
}
