// A remote blob checked chunk by chunk against its chunk manifest
// (worker/chunk_manifest.h). Every read is served from whole chunks: the chunks the
// range touches are fetched whole, hashed, and compared with the manifest before a
// byte of them is handed out. So a wrong chunk never reaches the cache file, whether
// the READ path (RequestHandler::copy_range) or read-ahead asked for it: both read
// through this source.
//
// A chunk that fails its digest fails the read with EIO (the reader's read() fails
// at once), is logged as an error naming the blob, the chunk, its offsets and both
// digests, and is counted (`on_mismatch`, the statistics page's failed fetches). It
// is not remembered as bad: the next read that touches it fetches it again, so a
// server whose copy was repaired serves it right without a remount.
//
// The two chunks used last are kept in memory (a READ or read-ahead step of up to
// 1 MiB not aligned to chunks touches two), so reading a chunk in pieces fetches it
// once.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "worker/blob_backend.h"
#include "worker/chunk_manifest.h"

namespace cfs::worker {

class ChunkVerifiedSource final : public BlobSource {
public:
    // `manifest.blob_size` must equal `inner->size()` (VerifyingBackend checks it).
    ChunkVerifiedSource(std::unique_ptr<BlobSource> inner, std::string name, ChunkManifest manifest,
                        std::function<void()> on_mismatch);
    std::uint64_t size() const override { return manifest_.blob_size; }
    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override;

private:
    struct Slot {
        std::uint64_t index = UINT64_MAX;  // UINT64_MAX: holds nothing
        std::vector<std::byte> data;
    };
    // The chunk, verified, from a slot or fetched into the older slot.
    [[nodiscard]] Result<const Slot*> chunk(std::uint64_t index);

    std::unique_ptr<BlobSource> inner_;
    std::string name_;
    ChunkManifest manifest_;
    std::function<void()> on_mismatch_;
    std::array<Slot, 2> slots_;
    std::size_t newest_ = 0;
};

}  // namespace cfs::worker
