// Read-ahead: how much of a blob a worker copies into the cache file beyond what a
// READ asked for. Every byte already in the cache file is a READ the kernel never
// sends (it sends one only for a hole), and a READ round trip costs far more than
// the copy of its bytes.
//
// Decisions are taken from what the cache file holds (SEEK_DATA/SEEK_HOLE on the
// object's anon fd), never from what this worker remembers: READs of one reader land
// on any worker, and a replacement worker must carry on where a dead one stopped.
// A READ that starts right after data the cache file holds comes from a reader that
// follows on; the more data there is behind it, the further ahead it is worth writing
// (twice that much, up to the maximum). A READ after a hole is a jump, and only its
// own range is written, so random reads cost no more than their own bytes.
#pragma once

#include <cstdint>

namespace cfs::worker {

struct ByteRange {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;  // exclusive
    [[nodiscard]] bool empty() const { return end <= begin; }
    [[nodiscard]] std::uint64_t size() const { return empty() ? 0 : end - begin; }
    bool operator==(const ByteRange&) const = default;
};

// What one object's cache file holds, as the kernel says. Both answers err on the
// side of writing: a failed question reads as "not there".
class CachePresence {
public:
    virtual ~CachePresence() = default;
    // The first byte at or after `pos` that the cache file does not hold.
    [[nodiscard]] virtual std::uint64_t hole_from(std::uint64_t pos) = 0;
    // The first byte at or after `pos` that it holds; UINT64_MAX if none.
    [[nodiscard]] virtual std::uint64_t data_from(std::uint64_t pos) = 0;
};

class ReadAheadPolicy {
public:
    // The window for a reader with no more than a block behind it, and the step of
    // the probes that measure how much is behind.
    static constexpr std::uint64_t kInitialWindow = 128 * 1024;

    // `max_bytes`: the largest window (0 turns read-ahead off: only the kernel's range
    // is copied). `block`: the cache file's block size; ranges are whole blocks.
    ReadAheadPolicy(std::uint64_t max_bytes, std::uint64_t block) : max_(max_bytes), block_(block) {}

    // What a READ of `length` bytes at `offset` must write: its range widened to whole
    // blocks, less the part at its start that the cache file holds already (a READ
    // queued while another worker, or the read-ahead, wrote its range). Empty when
    // the cache file holds all of it.
    [[nodiscard]] ByteRange own_range(std::uint64_t offset, std::uint64_t length, CachePresence& cache) const;
    // What to write ahead after a READ whose range (widened to blocks) is `asked`: from
    // its end for one window, up to the blob's last block or the first byte the cache
    // file holds, whichever comes first. Empty for a jump.
    [[nodiscard]] ByteRange plan_ahead(ByteRange asked, std::uint64_t blob_size, CachePresence& cache) const;
    // A range widened to whole blocks, as cache files take them.
    [[nodiscard]] ByteRange widen(std::uint64_t offset, std::uint64_t length) const;

private:
    // How much data the cache file holds right before `pos`, in probe steps.
    [[nodiscard]] std::uint64_t data_behind(std::uint64_t pos, CachePresence& cache) const;

    std::uint64_t max_;
    std::uint64_t block_;
};

}  // namespace cfs::worker
