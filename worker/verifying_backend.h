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
//   from memory, without another fetch.
// - A larger blob is checked once every byte of it was fetched: bytes are hashed as
//   they arrive in order; when the last missing range arrives, whatever was fetched
//   out of order is fetched again in order to finish the hash (so a blob read in
//   random order is fetched about twice, once). A mismatch fails that READ and every
//   later one of the blob, and is logged as an error naming the blob and both
//   digests. Bytes served before that are already in the cache: they are not silent
//   (the error says so) but they stay until the object is dropped (an umount, or
//   culling the cache). Closing that gap needs digests per chunk, which a plain erofs
//   image does not carry.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "worker/blob_backend.h"

namespace cfs::worker {

// Blobs up to this size are fetched whole and checked before OPEN is answered.
inline constexpr std::uint64_t kWholeBlobLimit = std::uint64_t{16} << 20;

using Sha256 = std::array<std::uint8_t, 32>;

// The digest a blob's name promises: "sha256:" and 64 lowercase hex digits.
[[nodiscard]] std::optional<Sha256> digest_from_name(std::string_view name);

class VerifyingBackend final : public BlobBackend {
public:
    explicit VerifyingBackend(BlobBackend& inner, std::uint64_t whole_blob_limit = kWholeBlobLimit)
        : inner_(inner), whole_blob_limit_(whole_blob_limit) {}
    // EIO, naming both digests, for a small blob that does not match its name.
    Result<std::unique_ptr<BlobSource>> open(std::string_view name) override;

private:
    BlobBackend& inner_;
    std::uint64_t whole_blob_limit_;
};

// Computes a SHA-256 once, so that OpenSSL sets itself up (config, providers) before
// the worker's sandbox rather than at its first blob.
[[nodiscard]] Status prepare_sha256();

}  // namespace cfs::worker
