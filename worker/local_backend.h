// Blobs as files in one directory, opened beneath a directory fd the supervisor hands
// over: the worker needs no path of its own, and openat2(RESOLVE_BENEATH) keeps every
// lookup inside that directory even through symlinks.
//
// A blob is read with direct I/O where its filesystem takes it (local_backend.cc says
// why); reads into a buffer that direct I/O cannot fill go through one aligned buffer
// the backend's blobs share, so a backend and its blobs belong to one thread.
#pragma once

#include <memory>

#include "common/unique_fd.h"
#include "worker/blob_backend.h"

namespace cfs::worker {

class DirectBounce;

class LocalDirBackend final : public BlobBackend {
public:
    explicit LocalDirBackend(unique_fd dir);
    ~LocalDirBackend() override;
    Result<std::unique_ptr<BlobSource>> open(std::string_view name) override;
    // EIO for a file whose size is not `size` (replaced since the object's OPEN); open_ahead
    // leaves such a blob to the READ, which reports that.
    Result<std::unique_ptr<BlobSource>> open_with_size(std::string_view name, std::uint64_t size) override;
    std::unique_ptr<BlobSource> open_ahead(std::string_view name, std::uint64_t size) override;

private:
    unique_fd dir_;
    std::shared_ptr<DirectBounce> bounce_;
};

}  // namespace cfs::worker
