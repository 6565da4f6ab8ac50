// Blobs as files in one directory, opened beneath a directory fd the supervisor hands
// over: the worker needs no path of its own, and openat2(RESOLVE_BENEATH) keeps every
// lookup inside that directory even through symlinks.
#pragma once

#include "common/unique_fd.h"
#include "worker/blob_backend.h"

namespace cfs::worker {

class LocalDirBackend final : public BlobBackend {
public:
    explicit LocalDirBackend(unique_fd dir) : dir_(std::move(dir)) {}
    Result<std::unique_ptr<BlobSource>> open(std::string_view name) override;

private:
    unique_fd dir_;
};

}  // namespace cfs::worker
