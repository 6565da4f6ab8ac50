// worker/read_ahead.h: what a READ writes, and how far ahead, judged from what the
// cache file holds.
#include <doctest/doctest.h>

#include "tests/unit/fake_cache_file.h"
#include "worker/read_ahead.h"

namespace {

using cfs::testing::FakeCacheFile;
using cfs::worker::ByteRange;
using cfs::worker::CachePresence;
using cfs::worker::ReadAheadPolicy;

constexpr std::uint64_t kBlock = 4096;
constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kInitial = ReadAheadPolicy::kInitialWindow;

struct Cache final : CachePresence {
    FakeCacheFile file;
    int questions = 0;
    std::uint64_t hole_from(std::uint64_t pos) override {
        ++questions;
        return file.hole_from(pos);
    }
    std::uint64_t data_from(std::uint64_t pos) override {
        ++questions;
        return file.data_from(pos);
    }
    void write(ByteRange r) { file.write(r.begin, r.size()); }
};

}  // namespace

TEST_CASE("read-ahead: off copies only the kernel's range, widened to blocks") {
    ReadAheadPolicy policy(0, kBlock);
    Cache cache;
    const auto own = policy.own_range(4100, 10, cache);
    CHECK(own == ByteRange{4096, 8192});
    cache.write({0, 4096});
    CHECK(policy.plan_ahead(policy.widen(4100, 10), 1 << 20, cache).empty());
}

TEST_CASE("read-ahead: the part of a READ the cache file holds at its start is not written again") {
    ReadAheadPolicy policy(1024 * kKiB, kBlock);
    Cache cache;
    cache.write({0, 64 * kKiB});
    CHECK(policy.own_range(0, 64 * kKiB, cache).empty());
    CHECK(policy.own_range(32 * kKiB, 64 * kKiB, cache) == ByteRange{64 * kKiB, 96 * kKiB});
    // A hole first: the whole range (the data after it is only written again).
    CHECK(policy.own_range(64 * kKiB, 8 * kKiB, cache) == ByteRange{64 * kKiB, 72 * kKiB});
}

TEST_CASE("read-ahead: a jump (a hole right before the READ) writes nothing ahead") {
    ReadAheadPolicy policy(1024 * kKiB, kBlock);
    Cache cache;
    const ByteRange asked = policy.widen(8 << 20, 4 * kKiB);
    cache.write(asked);
    CHECK(policy.plan_ahead(asked, 64 << 20, cache).empty());
    // Data further back does not count: only what touches the READ.
    cache.write({(8 << 20) - 64 * kKiB, (8 << 20) - 4 * kKiB});
    CHECK(policy.plan_ahead(asked, 64 << 20, cache).empty());
}

TEST_CASE("read-ahead: the window is twice the data behind the READ, from the initial one up to the maximum") {
    ReadAheadPolicy policy(1024 * kKiB, kBlock);
    const std::uint64_t size = 64 << 20;
    const std::uint64_t at = 16 << 20;
    const ByteRange asked{at, at + 128 * kKiB};
    auto ahead_with_behind = [&](std::uint64_t behind) {
        Cache cache;
        cache.write({at - behind, at});
        cache.write(asked);
        return policy.plan_ahead(asked, size, cache);
    };
    CHECK(ahead_with_behind(4 * kKiB) == ByteRange{asked.end, asked.end + kInitial});
    CHECK(ahead_with_behind(kInitial) == ByteRange{asked.end, asked.end + 2 * kInitial});
    CHECK(ahead_with_behind(300 * kKiB) == ByteRange{asked.end, asked.end + 512 * kKiB});
    CHECK(ahead_with_behind(8 << 20) == ByteRange{asked.end, asked.end + 1024 * kKiB});
    // The first READ of a blob (its superblock) has nothing behind it and still
    // reads ahead.
    Cache first;
    first.write({0, 4 * kKiB});
    CHECK(policy.plan_ahead({0, 4 * kKiB}, size, first) == ByteRange{4 * kKiB, 4 * kKiB + kInitial});
}

TEST_CASE("read-ahead: a reader that follows on gets the maximum window within a few READs") {
    ReadAheadPolicy policy(4096 * kKiB, kBlock);
    Cache cache;
    const std::uint64_t size = 256 << 20;
    std::uint64_t pos = 0;
    int reads = 0;
    ByteRange ahead;
    // Each READ starts at the first hole, as the kernel's do; the read-ahead is all
    // written before the next.
    while (pos < (32 << 20)) {
        const ByteRange own = policy.own_range(pos, 128 * kKiB, cache);
        cache.write(own);
        ahead = policy.plan_ahead(policy.widen(pos, 128 * kKiB), size, cache);
        cache.write(ahead);
        ++reads;
        pos = cache.file.hole_from(0);
    }
    CHECK(ahead.size() == 4096 * kKiB);
    CHECK(reads < 14);
    // A handful of questions per READ, not one per block.
    CHECK(cache.questions < reads * 12);
}

TEST_CASE("read-ahead: never past the blob's last block, nor over data the cache file holds") {
    ReadAheadPolicy policy(1024 * kKiB, kBlock);
    Cache cache;
    cache.write({0, 4 * kKiB});
    // The blob ends inside a block: that block is the last one written ahead.
    CHECK(policy.plan_ahead({0, 4 * kKiB}, 10000, cache) == ByteRange{4096, 12288});
    // Data further on stops the window there.
    cache.write({64 * kKiB, 72 * kKiB});
    CHECK(policy.plan_ahead({0, 4 * kKiB}, 1 << 20, cache) == ByteRange{4 * kKiB, 64 * kKiB});
    // A READ of the last block: nothing left to read ahead.
    Cache end;
    end.write({4096, 12288});
    CHECK(policy.plan_ahead({8192, 12288}, 10000, end).empty());
}
