#include "supervisor/blob_stores.h"

#include <fcntl.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/blob_url.h"
#include "supervisor/blob_credentials.h"
#include "supervisor/blob_host.h"

namespace cfs::supervisor {
namespace {

static_assert(kMaxVolumes + 1 <= wire::kMaxBlobStores, "every store must reach the workers");

std::variant<PreparedStore, StoreFault> prepare(const BlobStoreConfig& config, std::uint32_t index,
                                                std::string_view volume) {
    // Errors and logs name the store and its keys: blobs.url, volume "img_a" url.
    const std::string store_name = store_of_volume(volume);
    PreparedStore store;
    store.label = store_header(volume);
    store.message.store = index;
    store.message.volume = std::string(volume);
    if (!config.dir.empty()) {
        store.dir = unique_fd(::open(config.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!store.dir)
            return StoreFault{sys_error(fmt::format("cannot open the blob directory {} {}", store_setting(store_name, "dir"), config.dir)),
                              EXIT_FAILURE};
        store.message.has_dir = 1;
        store.dir_path = config.dir;
    }
    if (config.url.empty()) return store;
    // Validated by the config parser already.
    auto url = parse_blob_url(config.url);
    if (!url) return StoreFault{std::move(url).error(), kExitConfig};
    auto resolved = resolve_blob_hosts(*url, config.allowed_origins, store_name);
    if (!resolved)
        return StoreFault{logic_error(fmt::format("cannot serve remote blobs: {}", resolved.error().message())),
                          EXIT_FAILURE};
    store.message.url = url->text;
    store.message.resolve = std::move(*resolved);
    store.message.origins = fmt::format("{}", fmt::join(config.allowed_origins, "\n"));
    if (!config.credentials_file.empty()) {
        auto credentials = read_blob_credentials(config.credentials_file, store_setting(store_name, "credentials"));
        if (!credentials)
            return StoreFault{logic_error(fmt::format("cannot serve remote blobs: {}", credentials.error().message())),
                              kExitConfig};
        store.message.credentials = std::move(*credentials);
    }
    // Every worker start carries all of this; too much of it (many addresses, long
    // names) is a start-up error rather than a truncated list in the workers.
    const std::size_t bytes = wire::encode(store.message).size();
    const auto too_long = [](const std::string& s) { return s.size() > wire::kMaxKeySize; };
    if (bytes > wire::kMaxMessageSize || too_long(store.message.resolve) || too_long(store.message.origins)) {
        const auto lines = std::count(store.message.resolve.begin(), store.message.resolve.end(), '\n') + 1;
        return StoreFault{logic_error(fmt::format("cannot serve remote blobs: {} url, allowed_origins, the {} address "
                                                  "line(s) they resolved to and credentials take {} bytes, more than "
                                                  "a worker is sent ({})",
                                                  store.label, lines, bytes, wire::kMaxMessageSize)),
                          kExitConfig};
    }
    return store;
}

}  // namespace

std::variant<std::vector<PreparedStore>, StoreFault> prepare_blob_stores(const Config& config) {
    std::vector<PreparedStore> stores;
    auto add = [&stores](std::variant<PreparedStore, StoreFault> one) -> std::optional<StoreFault> {
        if (auto* fault = std::get_if<StoreFault>(&one)) return std::move(*fault);
        stores.push_back(std::get<PreparedStore>(std::move(one)));
        return std::nullopt;
    };
    if (auto fault = add(prepare(config.blobs, 0, ""))) return std::move(*fault);
    for (std::size_t i = 0; i < config.volumes.size(); ++i)
        if (auto fault = add(prepare(config.volumes[i].blobs, static_cast<std::uint32_t>(i + 1), config.volumes[i].name)))
            return std::move(*fault);
    return stores;
}

std::vector<std::string> describe_blob_stores(const std::vector<PreparedStore>& stores) {
    std::vector<std::string> lines;
    for (const PreparedStore& s : stores) {
        const std::string whose = s.message.volume.empty() ? std::string("volumes no [[volume]] names")
                                                           : fmt::format("volume erofs,{}", s.message.volume);
        std::string resolve = s.message.resolve;
        std::replace(resolve.begin(), resolve.end(), '\n', ' ');
        std::string line = fmt::format("{}: blobs of {}", s.label, whose);
        if (s.message.url.empty())
            line += fmt::format(" come from {}", s.dir_path);
        else
            line += fmt::format("{} come from {}, host pinned for the workers as {}{}",
                                s.message.has_dir ? fmt::format(" not in {}", s.dir_path) : std::string(),
                                s.message.url, resolve, s.message.credentials.empty() ? "" : ", with credentials");
        if (!s.message.origins.empty()) {
            std::string origins = s.message.origins;
            std::replace(origins.begin(), origins.end(), '\n', ' ');
            line += fmt::format("; workers may also contact {} ({}: a token service, a blob store)", origins,
                                store_setting(store_of_volume(s.message.volume), "allowed_origins"));
        }
        lines.push_back(std::move(line));
    }
    return lines;
}

}  // namespace cfs::supervisor
