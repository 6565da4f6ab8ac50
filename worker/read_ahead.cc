#include "worker/read_ahead.h"

#include <algorithm>
#include <iterator>

namespace cfs::worker {

void WrittenRanges::add(ByteRange r) {
    if (r.empty()) return;
    // Merge with every range it overlaps or touches.
    auto it = ranges_.upper_bound(r.begin);
    if (it != ranges_.begin()) {
        auto prev = std::prev(it);
        if (prev->second >= r.begin) it = prev;
    }
    while (it != ranges_.end() && it->first <= r.end) {
        r.begin = std::min(r.begin, it->first);
        r.end = std::max(r.end, it->second);
        it = ranges_.erase(it);
    }
    ranges_.emplace(r.begin, r.end);
    if (ranges_.size() > kMaxRanges) ranges_.erase(ranges_.begin());
}

bool WrittenRanges::contains(ByteRange r) const {
    if (r.empty()) return true;
    auto it = ranges_.upper_bound(r.begin);
    if (it == ranges_.begin()) return false;
    --it;
    return it->first <= r.begin && r.end <= it->second;
}

std::uint64_t WrittenRanges::next_written(std::uint64_t pos) const {
    auto it = ranges_.upper_bound(pos);
    if (it != ranges_.begin() && std::prev(it)->second > pos) return pos;
    return it == ranges_.end() ? UINT64_MAX : it->first;
}

ByteRange ReadAhead::own_range(std::uint64_t offset, std::uint64_t length) const {
    const ByteRange r{offset / block_ * block_, (offset + length + block_ - 1) / block_ * block_};
    if (written_.contains(r)) return {r.begin, r.begin};
    return r;
}

ByteRange ReadAhead::plan_ahead(ByteRange own, std::uint64_t blob_size) {
    // A READ whose range was written already (it was queued while that range was
    // written ahead) says nothing about where the reader goes next.
    if (max_ == 0 || own.empty()) return {};
    if (own.begin == follow_on_ && window_ > 0)
        window_ = std::min(max_, window_ * 2);
    else
        window_ = std::min(max_, kInitialWindow);
    const std::uint64_t last = (blob_size + block_ - 1) / block_ * block_;
    ByteRange ahead{own.end, std::min({last, own.end + window_, written_.next_written(own.end)})};
    ahead.end = std::max(ahead.begin, ahead.end / block_ * block_);
    follow_on_ = ahead.empty() ? own.end : ahead.end;
    return ahead;
}

}  // namespace cfs::worker
