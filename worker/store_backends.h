// The worker's side of the blob stores (common/worker_protocol.h, BlobStore): one
// backend per store, built in two steps around the sandbox. Before it, everything
// curl needs from files (the CA bundle, OpenSSL's set-up) is loaded for each store
// with a url; after it, each store's directory is reached as mounted inside the
// sandbox. Store 0 ([blobs]) serves every volume no [[volume]] names.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "common/worker_protocol.h"
#include "worker/http_backend.h"
#include "worker/layered_backend.h"
#include "worker/local_backend.h"
#include "worker/verifying_backend.h"
#include "worker/volume_router.h"

namespace cfs::worker {

class StoreBackends {
public:
    // `stores` in order, store 0 first (receive_init checked the order). `on_fetch_error`
    // counts each failed fetch and each digest mismatch.
    [[nodiscard]] static Result<StoreBackends> prepare(std::vector<wire::BlobStore> stores,
                                                       std::function<void()> on_fetch_error);

    [[nodiscard]] bool any_remote() const;
    // Every remote store's ports (Landlock), without repeats.
    [[nodiscard]] std::vector<std::uint16_t> connect_ports() const;
    // After the sandbox: `dirs[i]` is store i's directory, or an empty fd for none.
    void attach_dirs(std::vector<unique_fd> dirs);
    [[nodiscard]] VolumeRouter router();

private:
    struct Store {
        wire::BlobStore config;  // its credentials stay in the HttpBackend only
        std::optional<LocalDirBackend> local;
        std::unique_ptr<HttpBackend> http;
        std::optional<VerifyingBackend> verifying;
        std::optional<LayeredBackend> layered;
        [[nodiscard]] BlobBackend* backend();
    };
    // One budget for every remote store's small blobs held in memory (a worker's
    // RLIMIT_DATA is one); unique_ptr, as the stores refer to it. Declared first:
    // it outlives their blobs.
    std::unique_ptr<WholeBlobPool> whole_blobs_ = std::make_unique<WholeBlobPool>();
    // And one for the chunks chunk-checked blobs keep, so that the stores' count does
    // not multiply it.
    std::unique_ptr<ChunkCache> chunks_ = std::make_unique<ChunkCache>();
    // unique_ptr: the backends refer to one another, so a Store never moves.
    std::vector<std::unique_ptr<Store>> stores_;
    std::function<void()> on_fetch_error_;
};

}  // namespace cfs::worker
