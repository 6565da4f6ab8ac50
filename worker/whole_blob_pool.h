// Small remote blobs checked whole against their digest name before OPEN is
// answered (worker/verifying_backend.h) are served from memory, so the bytes served
// are the bytes checked. Every object a worker serves holds its own copy, and the
// sandbox caps a worker's private memory (RLIMIT_DATA, common/worker_sandbox.h): a
// node with a few dozen such layers mounted would have the next allocation fail and
// the worker die, and its replacement the same. So the copies share one budget per
// worker: a blob that does not fit makes room by dropping the bytes of those read
// least recently, and a read of a blob whose bytes were dropped fetches and checks
// the whole blob again first (a mismatch then fails that read with EIO).
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "worker/blob_backend.h"
#include "worker/sha256.h"

namespace cfs::worker {

// Bytes of checked small blobs one worker keeps in memory at most.
inline constexpr std::uint64_t kWholeBlobMemory = std::uint64_t{64} << 20;

// "blob NAME failed verification: its bytes hash to sha256:...", with EIO.
[[nodiscard]] Error digest_mismatch(std::string_view name, const Sha256& got);

// Every byte of `blob`, checked against `expected`: EIO naming `name` for a blob
// shorter than its size or one that does not match (`on_mismatch` called first).
[[nodiscard]] Result<std::vector<std::byte>> fetch_whole_checked(BlobSource& blob, std::string_view name,
                                                                 const Sha256& expected,
                                                                 const std::function<void()>& on_mismatch);

class PooledBlob;

class WholeBlobPool {
public:
    explicit WholeBlobPool(std::uint64_t budget = kWholeBlobMemory) : budget_(budget) {}
    WholeBlobPool(const WholeBlobPool&) = delete;
    WholeBlobPool& operator=(const WholeBlobPool&) = delete;

    // Fetches and checks `inner` whole now (fetch_whole_checked) and serves it from
    // memory. The pool must outlive the source.
    [[nodiscard]] Result<std::unique_ptr<BlobSource>> hold(std::unique_ptr<BlobSource> inner, std::string name,
                                                           const Sha256& expected, std::function<void()> on_mismatch);
    // Bytes held now.
    [[nodiscard]] std::uint64_t held() const { return held_; }

private:
    friend class PooledBlob;
    // Drops the bytes of the blobs read least recently until `bytes` more fit (or
    // none is left to drop: one blob larger than the budget is still held).
    void make_room(std::uint64_t bytes);
    void enter(PooledBlob& blob);
    void touch(PooledBlob& blob);
    void leave(PooledBlob& blob);

    std::uint64_t budget_;
    std::uint64_t held_ = 0;
    std::list<PooledBlob*> recent_;  // holding their bytes, most recently read first
};

}  // namespace cfs::worker
