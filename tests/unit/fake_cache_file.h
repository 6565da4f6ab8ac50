// What a cache file holds, block by block, for fakes of the kernel: answers
// SEEK_DATA/SEEK_HOLE as ext4 does for a sparse file (whole blocks; inside a hole the
// hole starts at the position asked).
#pragma once

#include <cstdint>
#include <set>

namespace cfs::testing {

class FakeCacheFile {
public:
    static constexpr std::uint64_t kBlock = 4096;

    void write(std::uint64_t offset, std::uint64_t length) {
        for (std::uint64_t b = offset / kBlock; b * kBlock < offset + length; ++b) blocks_.insert(b);
    }
    [[nodiscard]] std::uint64_t hole_from(std::uint64_t pos) const {
        std::uint64_t b = pos / kBlock;
        if (!blocks_.contains(b)) return pos;
        while (blocks_.contains(b)) ++b;
        return b * kBlock;
    }
    [[nodiscard]] std::uint64_t data_from(std::uint64_t pos) const {
        if (blocks_.contains(pos / kBlock)) return pos;
        auto it = blocks_.upper_bound(pos / kBlock);
        return it == blocks_.end() ? UINT64_MAX : *it * kBlock;
    }

private:
    std::set<std::uint64_t> blocks_;
};

}  // namespace cfs::testing
