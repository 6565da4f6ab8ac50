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
// Chunks a read needs that are not at hand are fetched in one request (small chunks
// must not cost a round trip each). The last two chunks verified are kept in a
// ChunkCache the worker's blobs share: a 1 MiB read not aligned to chunks starts in
// the chunk the read before it ended in, and a reader's small reads fall in one
// chunk. One cache per worker, not per blob or per store: a worker holds many
// objects, and it serves one request at a time; a blob that goes frees its chunks.
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

class ChunkCache {
public:
    // The chunk's bytes if held; valid until the next put().
    [[nodiscard]] const std::vector<std::byte>* find(const void* blob, std::uint64_t index);
    void put(const void* blob, std::uint64_t index, std::span<const std::byte> data);
    // A blob going away: its chunks must not be found by a new blob at its address.
    void forget(const void* blob);
    // The memory its chunks take.
    [[nodiscard]] std::size_t bytes_held() const;

private:
    struct Slot {
        const void* blob = nullptr;
        std::uint64_t index = 0;
        std::vector<std::byte> data;
    };
    std::array<Slot, 2> slots_;
    std::size_t newest_ = 0;
};

class ChunkVerifiedSource final : public BlobSource {
public:
    // `manifest.blob_size` must equal `inner->size()` (VerifyingBackend checks it);
    // `cache` must outlive this source.
    ChunkVerifiedSource(std::unique_ptr<BlobSource> inner, std::string name, ChunkManifest manifest,
                        ChunkCache& cache, std::function<void()> on_mismatch);
    ~ChunkVerifiedSource() override { cache_.forget(this); }
    ChunkVerifiedSource(const ChunkVerifiedSource&) = delete;
    ChunkVerifiedSource& operator=(const ChunkVerifiedSource&) = delete;
    std::uint64_t size() const override { return manifest_.blob_size; }
    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override;

private:
    // Fetches chunks [first, end) in one request into `out` and checks each.
    [[nodiscard]] Status fetch_verified(std::uint64_t first, std::uint64_t end, std::vector<std::byte>& out);

    std::unique_ptr<BlobSource> inner_;
    std::string name_;
    ChunkManifest manifest_;
    ChunkCache& cache_;
    std::function<void()> on_mismatch_;
};

}  // namespace cfs::worker
