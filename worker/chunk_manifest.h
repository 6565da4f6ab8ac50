// A blob's chunk manifest: the SHA-256 of every fixed-size chunk of one blob, so that a
// blob read lazily can be checked chunk by chunk before any byte of a chunk reaches
// the cache (worker/chunk_verified_source.h).
//
// Where it comes from: `<blobs.dir>/<blob name>.chunks`, put there by the operator
// (or the tool that pulls image manifests) next to where a local copy of the blob
// would be. It is trusted because that directory is: only root writes it, and a blob
// there is served unchecked anyway. It is never fetched from the blob server: a
// manifest the server hands out is authenticated by nothing the worker knows before
// the blob is complete, so a server serving wrong bytes would serve matching chunk
// digests with them. (Checked against the blob's digest "once every byte was
// fetched" comes too late: the chunks served before are in the cache by then.)
//
// Text, so that coreutils can write it (README, "Remote blobs"):
//
//   cfs-chunks 1
//   chunk_size 1048576
//   size 134479872
//   <64 lowercase hex digits>[ anything]     one line per chunk, in order
//
// `sha256sum` and `split --filter=sha256sum` output ("<hex>  -") is accepted as is.
// Lines starting with '#' and empty lines are ignored.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "worker/sha256.h"

namespace cfs::worker {

// Chunks are whole cache blocks, and two of them are held in memory per open blob.
inline constexpr std::uint64_t kMinChunkSize = 4096;
inline constexpr std::uint64_t kMaxChunkSize = std::uint64_t{16} << 20;
// 16 MiB of text is 250,000 chunks: a 250 GiB blob in 1 MiB chunks.
inline constexpr std::uint64_t kMaxManifestBytes = std::uint64_t{16} << 20;
inline constexpr std::string_view kChunkManifestSuffix = ".chunks";

struct ChunkManifest {
    std::uint64_t chunk_size = 0;
    std::uint64_t blob_size = 0;
    std::vector<Sha256> chunks;  // ceil(blob_size / chunk_size) of them
};

// `source` names the file in errors ("sha256:ab...chunks line 4: ...").
[[nodiscard]] Result<ChunkManifest> parse_chunk_manifest(std::string_view text, std::string_view source);

}  // namespace cfs::worker
