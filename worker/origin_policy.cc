#include "worker/origin_policy.h"

#include <algorithm>

#include <fmt/format.h>

namespace cfs::worker {

Result<OriginPolicy> OriginPolicy::from_lines(BlobUrl server, std::string_view lines, std::string store) {
    std::vector<BlobUrl> others;
    while (!lines.empty()) {
        const std::size_t nl = lines.find('\n');
        const std::string_view line = lines.substr(0, nl);
        lines = nl == std::string_view::npos ? std::string_view() : lines.substr(nl + 1);
        if (line.empty()) continue;
        auto origin = parse_blob_origin(line);
        if (!origin) return logic_error(fmt::format("allowed origin {}: {}", line, origin.error().message()));
        others.push_back(std::move(*origin));
    }
    return OriginPolicy(std::move(server), std::move(others), std::move(store));
}

Result<BlobUrl> OriginPolicy::check(std::string_view url, std::string_view what) const {
    auto origin = origin_of(url);
    // Shown without its query: a presigned blob-store URL carries its signature there.
    url = url.substr(0, url.find('?'));
    if (!origin) return logic_error(fmt::format("{} {} is not an http(s) URL a worker can follow: {}", what, url,
                                                origin.error().message()));
    if (same_origin(*origin, server_)) return origin;
    for (const BlobUrl& other : others_)
        if (same_origin(*origin, other)) return origin;
    return logic_error(fmt::format("{} {} is on {}, which is neither {}'s origin {} nor in {}", what, url,
                                   origin_text(*origin), store_setting(store_, "url"), origin_text(server_),
                                   store_setting(store_, "allowed_origins")));
}

bool OriginPolicy::is_server(std::string_view url) const {
    auto origin = origin_of(url);
    return origin && same_origin(*origin, server_);
}

std::vector<std::uint16_t> OriginPolicy::ports() const {
    std::vector<std::uint16_t> ports{server_.port};
    for (const BlobUrl& other : others_)
        if (std::find(ports.begin(), ports.end(), other.port) == ports.end()) ports.push_back(other.port);
    return ports;
}

bool is_redirect(long status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace cfs::worker
