// Byte buffers aligned for direct I/O (std::aligned_alloc), freed with std::free.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>

namespace cfs::worker {

struct FreeBytes {
    void operator()(std::byte* p) const { std::free(p); }
};
using AlignedBytes = std::unique_ptr<std::byte[], FreeBytes>;

// `size` must be a multiple of `alignment`. Null when there is no memory for it.
[[nodiscard]] inline AlignedBytes allocate_aligned(std::size_t alignment, std::size_t size) {
    return AlignedBytes(static_cast<std::byte*>(std::aligned_alloc(alignment, size)));
}

}  // namespace cfs::worker
