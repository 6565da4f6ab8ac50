// A blob directory with a remote source behind it ([blobs] dir and url): a blob in
// the directory is served from there (a pre-seeded or pinned copy), any other from the
// remote source. Only "not in the directory" (ENOENT) falls through; any other local
// error (a blob that exists but cannot be read) is the answer, so a broken local copy
// is never silently replaced by a remote one.
#pragma once

#include <cerrno>

#include "worker/blob_backend.h"

namespace cfs::worker {

class LayeredBackend final : public BlobBackend {
public:
    LayeredBackend(BlobBackend& local, BlobBackend& remote) : local_(local), remote_(remote) {}
    Result<std::unique_ptr<BlobSource>> open(std::string_view name) override {
        auto blob = local_.open(name);
        if (blob || blob.error().errnum != ENOENT) return blob;
        return remote_.open(name);
    }
    Result<std::unique_ptr<BlobSource>> open_with_size(std::string_view name, std::uint64_t size) override {
        auto blob = local_.open_with_size(name, size);
        if (blob || blob.error().errnum != ENOENT) return blob;
        return remote_.open_with_size(name, size);
    }
    // The local copy only: the remote one is fetched when a READ wants it.
    std::unique_ptr<BlobSource> open_ahead(std::string_view name, std::uint64_t size) override {
        return local_.open_ahead(name, size);
    }

private:
    BlobBackend& local_;
    BlobBackend& remote_;
};

}  // namespace cfs::worker
