// Integrity of remote blobs whose name is their digest ("sha256:<64 hex digits>", as
// OCI names blobs; issue 7, slice 2). Wraps a backend (the HTTP one); a blob with any
// other name passes through unchecked.
//
// Lazy loading and a whole-blob digest pull in opposite directions: the digest can
// only be checked over every byte, in order, and a reader asks for ranges in any
// order, each written into the cache as soon as it arrives. So:
// - A blob of at most kWholeBlobLimit bytes (erofs metadata images, small blobs) is
//   fetched whole at OPEN and checked before any byte of it is served; a mismatch
//   fails the OPEN (EIO), so nothing of it is ever cached. Its READs are then served
//   from memory, without another fetch while the worker's budget for such bytes
//   holds it (worker/whole_blob_pool.h).
// - A larger blob is checked once every byte of it was fetched: bytes are hashed as
//   they arrive in order; when the last missing range arrives, whatever was fetched
//   out of order is fetched again in order to finish the hash (so a blob read in
//   random order is fetched about twice, once). A mismatch fails that READ and every
//   later one of the blob, and is logged as an error naming the blob and both
//   digests. Bytes served before that are already in the cache: they are not silent
//   (the error says so) but they stay until the object is dropped (an umount, or
//   culling the cache). Bytes served out of order, or fetched again after the check,
//   are not the bytes hashed: a server that answers a range differently the second
//   time is not caught (README "Digests"). A plain erofs image carries no digests
//   per chunk; so:
// - A blob with a chunk manifest (`<blobs.dir>/<name>.chunks`, worker/chunk_manifest.h),
//   whatever its name, is checked chunk by chunk before any byte of a chunk is served
//   (worker/chunk_verified_source.h), and only that way: the operator's manifest is
//   the statement of what the blob holds. A manifest that cannot be read or parsed,
//   or whose size is not the blob's, fails the OPEN (EIO) naming it; it is never
//   skipped.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "worker/blob_backend.h"
#include "worker/chunk_verified_source.h"
#include "worker/sha256.h"
#include "worker/whole_blob_pool.h"

namespace cfs::worker {

// Blobs up to this size are fetched whole and checked before OPEN is answered.
inline constexpr std::uint64_t kWholeBlobLimit = std::uint64_t{16} << 20;

// The digest a blob's name promises: "sha256:" and 64 lowercase hex digits.
[[nodiscard]] std::optional<Sha256> digest_from_name(std::string_view name);

class VerifyingBackend final : public BlobBackend {
public:
    // `on_mismatch`: called for every blob or chunk that fails its digest (the
    // statistics page counts it as a failed fetch).
    explicit VerifyingBackend(BlobBackend& inner, std::uint64_t whole_blob_limit = kWholeBlobLimit,
                              std::function<void()> on_mismatch = {})
        : inner_(inner), whole_blob_limit_(whole_blob_limit), on_mismatch_(std::move(on_mismatch)) {}
    // Where `<name>.chunks` is looked for (the local blob directory); none: no blob
    // is checked by chunks. Only ENOENT means "no manifest".
    void use_chunk_manifests(BlobBackend& dir) { manifests_ = &dir; }
    // The memory for small blobs checked whole, shared with the worker's other
    // stores (worker/whole_blob_pool.h); by default this backend's own. `pool` must
    // outlive this backend and its blobs.
    void share_whole_blob_pool(WholeBlobPool& pool) { pool_ = &pool; }
    // The same for the chunks kept by chunk-checked blobs (chunk_verified_source.h):
    // up to two chunks of 16 MiB each, per worker rather than per store.
    void share_chunk_cache(ChunkCache& cache) { chunk_cache_ = &cache; }
    // EIO, naming both digests, for a small blob that does not match its name; EIO
    // naming the manifest for one that is unreadable, malformed or of another size.
    Result<std::unique_ptr<BlobSource>> open(std::string_view name) override;
    // Checked the same way; the size goes to the store behind (BlobBackend).
    Result<std::unique_ptr<BlobSource>> open_with_size(std::string_view name, std::uint64_t size) override;

private:
    // `blob`, opened by the store behind, as open() returns it: checked by chunks,
    // whole, or as it is.
    [[nodiscard]] Result<std::unique_ptr<BlobSource>> checked(std::string_view name,
                                                              Result<std::unique_ptr<BlobSource>> blob);
    // The blob's manifest, or nullopt when there is none.
    [[nodiscard]] Result<std::optional<std::string>> read_manifest(std::string_view name);

    BlobBackend& inner_;
    std::uint64_t whole_blob_limit_;
    std::function<void()> on_mismatch_;
    BlobBackend* manifests_ = nullptr;
    ChunkCache own_chunk_cache_;
    ChunkCache* chunk_cache_ = &own_chunk_cache_;
    WholeBlobPool own_pool_;
    WholeBlobPool* pool_ = &own_pool_;
};

// Computes a SHA-256 once, so that OpenSSL sets itself up (config, providers) before
// the worker's sandbox rather than at its first blob.
[[nodiscard]] Status prepare_sha256();

}  // namespace cfs::worker
