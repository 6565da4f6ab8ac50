#include "worker/store_backends.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "common/blob_url.h"

namespace cfs::worker {
namespace {

Result<std::string> read_ca_bundle() {
    std::ifstream bundle(kCaBundlePath, std::ios::binary);
    std::ostringstream text;
    text << bundle.rdbuf();
    if (!bundle || text.str().empty())
        return logic_error(fmt::format("a store's url is https, and the CA certificates in {} cannot be read",
                                       kCaBundlePath));
    return text.str();
}

}  // namespace

Result<StoreBackends> StoreBackends::prepare(std::vector<wire::BlobStore> stores, std::function<void()> on_fetch_error) {
    StoreBackends out;
    out.on_fetch_error_ = std::move(on_fetch_error);
    std::optional<std::string> ca_bundle;
    bool sha256_ready = false;
    for (wire::BlobStore& config : stores) {
        auto store = std::make_unique<Store>();
        if (!config.url.empty()) {
            auto url = parse_blob_url(config.url);
            if (!url)
                return logic_error(fmt::format("{} url from the supervisor: {}", store_header(config.volume),
                                               url.error().message()));
            HttpOptions http{.url = *url, .resolve = config.resolve, .ca_bundle = {}, .policy = {},
                             .on_fetch_error = out.on_fetch_error_, .credentials = std::move(config.credentials),
                             .allowed_origins = config.origins,
                             .store = store_of_volume(config.volume)};
            config.credentials.clear();
            if (url->scheme == "https") {
                if (!ca_bundle) {
                    auto read = read_ca_bundle();
                    if (!read) return std::move(read).error();
                    ca_bundle = std::move(*read);
                }
                http.ca_bundle = *ca_bundle;
            }
            auto created = HttpBackend::create(std::move(http));
            if (!created) return logic_error(fmt::format("{}: {}", store_header(config.volume), created.error().message()));
            store->http = std::move(*created);
            if (!sha256_ready) {
                if (auto ready = prepare_sha256(); !ready) return std::move(ready).error();
                sha256_ready = true;
            }
        }
        store->config = std::move(config);
        out.stores_.push_back(std::move(store));
    }
    return out;
}

bool StoreBackends::any_remote() const {
    return std::any_of(stores_.begin(), stores_.end(), [](const auto& s) { return s->http != nullptr; });
}

std::vector<std::uint16_t> StoreBackends::connect_ports() const {
    std::vector<std::uint16_t> ports;
    for (const auto& s : stores_) {
        if (!s->http) continue;
        for (const std::uint16_t p : s->http->connect_ports())
            if (std::find(ports.begin(), ports.end(), p) == ports.end()) ports.push_back(p);
    }
    return ports;
}

void StoreBackends::attach_dirs(std::vector<unique_fd> dirs) {
    for (std::size_t i = 0; i < stores_.size() && i < dirs.size(); ++i) {
        Store& s = *stores_[i];
        if (dirs[i]) s.local.emplace(std::move(dirs[i]));
        if (!s.http) continue;
        s.verifying.emplace(*s.http, kWholeBlobLimit, on_fetch_error_);
        s.verifying->share_whole_blob_pool(*whole_blobs_);
        s.verifying->share_chunk_cache(*chunks_);
        if (!s.local) continue;
        // Chunk manifests live where the store's local copies of blobs do
        // (worker/chunk_manifest.h): in root's directory, never on the server.
        s.verifying->use_chunk_manifests(*s.local);
        s.layered.emplace(*s.local, *s.verifying);
    }
}

BlobBackend* StoreBackends::Store::backend() {
    if (layered) return &*layered;
    if (verifying) return &*verifying;
    if (local) return &*local;
    return nullptr;
}

VolumeRouter StoreBackends::router() {
    VolumeRouter router(*stores_.front()->backend());
    for (std::size_t i = 1; i < stores_.size(); ++i)
        if (BlobBackend* b = stores_[i]->backend()) router.route("erofs," + stores_[i]->config.volume, *b);
    return router;
}

}  // namespace cfs::worker
