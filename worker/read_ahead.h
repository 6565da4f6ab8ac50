// Read-ahead: how much of a blob one READ copies into the cache file. Every byte
// written ahead is a READ the kernel never sends (it sends one only for a hole in the
// cache file), and a READ round trip costs far more than the copy of its bytes.
//
// Per object, a window that grows while the kernel's READs follow on from the data
// already written (a sequential reader, or files laid out in the order they are read)
// and falls back to the kernel's own range on a jump (random reads pay no more than
// their own range). Lives beside the request handler, not in a backend, so every
// BlobBackend gets it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

namespace cfs::worker {

struct ByteRange {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;  // exclusive
    [[nodiscard]] bool empty() const { return end <= begin; }
    bool operator==(const ByteRange&) const = default;
};

// What this worker has written into one object's cache file. Forgetting a range is
// always safe (it is only written again), so the set is bounded: past kMaxRanges the
// lowest range is dropped.
class WrittenRanges {
public:
    static constexpr std::size_t kMaxRanges = 1024;

    void add(ByteRange r);
    [[nodiscard]] bool contains(ByteRange r) const;
    // The first written byte at or after `pos`, or UINT64_MAX.
    [[nodiscard]] std::uint64_t next_written(std::uint64_t pos) const;
    [[nodiscard]] std::size_t size() const { return ranges_.size(); }

private:
    std::map<std::uint64_t, std::uint64_t> ranges_;  // begin -> end, disjoint, not adjacent
};

class ReadAhead {
public:
    // The first window after a jump; doubled on each READ that follows on.
    static constexpr std::uint64_t kInitialWindow = 128 * 1024;

    // `max_bytes`: the largest window (0 turns read-ahead off: only the kernel's range
    // is copied). `block`: the cache file's block size; ranges are whole blocks.
    ReadAhead(std::uint64_t max_bytes, std::uint64_t block) : max_(max_bytes), block_(block) {}

    // The READ's own range widened to whole blocks; empty when all of it was written
    // before (by this worker, through this object's anon fd).
    [[nodiscard]] ByteRange own_range(std::uint64_t offset, std::uint64_t length) const;
    // What to write ahead after the READ's own range (`own`, from own_range): from its
    // end for one window, up to the blob's last block or the first byte already
    // written, whichever comes first. Updates the window; nothing when `own` is empty.
    [[nodiscard]] ByteRange plan_ahead(ByteRange own, std::uint64_t blob_size);

    void written(ByteRange r) { written_.add(r); }
    [[nodiscard]] const WrittenRanges& written_ranges() const { return written_; }
    [[nodiscard]] std::uint64_t window() const { return window_; }

private:
    std::uint64_t max_;
    std::uint64_t block_;
    std::uint64_t window_ = 0;
    // Where the last range written ahead ended: the next READ of a reader that
    // followed on starts here.
    std::uint64_t follow_on_ = UINT64_MAX;
    WrittenRanges written_;
};

}  // namespace cfs::worker
