#include "worker/read_ahead.h"

#include <algorithm>

namespace cfs::worker {

ByteRange ReadAheadPolicy::widen(std::uint64_t offset, std::uint64_t length) const {
    return {offset / block_ * block_, (offset + length + block_ - 1) / block_ * block_};
}

ByteRange ReadAheadPolicy::own_range(std::uint64_t offset, std::uint64_t length, CachePresence& cache) const {
    ByteRange r = widen(offset, length);
    r.begin = std::min(r.end, cache.hole_from(r.begin) / block_ * block_);
    return r;
}

std::uint64_t ReadAheadPolicy::data_behind(std::uint64_t pos, CachePresence& cache) const {
    if (pos < block_ || cache.hole_from(pos - block_) < pos) return 0;
    // Doubling probes: a handful of lseeks, against a READ round trip per window.
    std::uint64_t behind = block_;
    for (std::uint64_t k = kInitialWindow / 2; k <= max_ / 2 && k <= pos; k *= 2) {
        if (cache.hole_from(pos - k) < pos) break;
        behind = k;
    }
    return behind;
}

ByteRange ReadAheadPolicy::plan_ahead(ByteRange asked, std::uint64_t blob_size, CachePresence& cache) const {
    if (max_ == 0 || asked.empty()) return {};
    // The blob's first READ (the filesystem's superblock) is followed by its metadata.
    const std::uint64_t behind = asked.begin == 0 ? block_ : data_behind(asked.begin, cache);
    if (behind == 0) return {};
    const std::uint64_t window = std::clamp(2 * behind, std::min(kInitialWindow, max_), max_);
    const std::uint64_t last = (blob_size + block_ - 1) / block_ * block_;
    ByteRange ahead{asked.end, std::min(last, asked.end + window)};
    if (ahead.empty()) return {};
    ahead.end = std::min(ahead.end, cache.data_from(ahead.begin));
    ahead.end = std::max(ahead.begin, ahead.end / block_ * block_);
    return ahead;
}

}  // namespace cfs::worker
