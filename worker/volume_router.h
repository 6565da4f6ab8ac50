// Which blob store serves a volume (common/config.h: [[volume]] tables). An OPEN names
// its volume ("erofs,<fsid or domain_id>"); a volume a [[volume]] names is served by
// its store alone, any other by [blobs]. A blob of a named volume is never looked for
// in [blobs]: two registries may use one name for different bytes.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "worker/blob_backend.h"

namespace cfs::worker {

class VolumeRouter {
public:
    explicit VolumeRouter(BlobBackend& fallback) : fallback_(&fallback) {}
    // `volume_key` as the kernel sends it, "erofs,<name>".
    void route(std::string volume_key, BlobBackend& backend) { routes_[std::move(volume_key)] = &backend; }

    [[nodiscard]] Result<std::unique_ptr<BlobSource>> open(std::string_view volume_key, std::string_view name) const {
        return store(volume_key).open(name);
    }
    // BlobBackend::open_with_size.
    [[nodiscard]] Result<std::unique_ptr<BlobSource>> open_with_size(std::string_view volume_key, std::string_view name,
                                                                     std::uint64_t size) const {
        return store(volume_key).open_with_size(name, size);
    }
    // BlobBackend::open_ahead.
    [[nodiscard]] std::unique_ptr<BlobSource> open_ahead(std::string_view volume_key, std::string_view name,
                                                         std::uint64_t size) const {
        return store(volume_key).open_ahead(name, size);
    }

private:
    [[nodiscard]] BlobBackend& store(std::string_view volume_key) const {
        const auto it = routes_.find(volume_key);
        return *(it == routes_.end() ? fallback_ : it->second);
    }

    BlobBackend* fallback_;
    std::map<std::string, BlobBackend*, std::less<>> routes_;
};

}  // namespace cfs::worker
