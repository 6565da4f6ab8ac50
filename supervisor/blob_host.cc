#include "supervisor/blob_host.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <vector>

#include <fmt/format.h>

namespace cfs::supervisor {

Result<std::string> resolve_blob_host(const BlobUrl& url, std::string_view table) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(url.port);
    if (const int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
        if (rc == EAI_SYSTEM) return sys_error(fmt::format("resolving {} (the host of {}.url)", url.host, table));
        return logic_error(fmt::format("resolving {} (the host of {}.url): {}", url.host, table, ::gai_strerror(rc)));
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, ::freeaddrinfo);
    std::vector<std::string> addresses;
    for (const addrinfo* a = found; a != nullptr && addresses.size() < kMaxBlobHostAddresses; a = a->ai_next) {
        char text[INET6_ADDRSTRLEN] = {};
        std::string shown;
        if (a->ai_family == AF_INET) {
            ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr, text, sizeof text);
            shown = text;
        } else if (a->ai_family == AF_INET6) {
            ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr, text, sizeof text);
            shown = fmt::format("[{}]", text);
        } else {
            continue;
        }
        if (std::find(addresses.begin(), addresses.end(), shown) == addresses.end()) addresses.push_back(shown);
    }
    if (addresses.empty())
        return logic_error(
            fmt::format("resolving {} (the host of {}.url): no IPv4 or IPv6 address", url.host, table));
    std::string entry = url.host_port() + ":";
    for (std::size_t i = 0; i < addresses.size(); ++i) entry += (i == 0 ? "" : ",") + addresses[i];
    return entry;
}

Result<std::string> resolve_blob_hosts(const BlobUrl& url, const std::vector<std::string>& origins,
                                       std::string_view table) {
    auto first = resolve_blob_host(url, table);
    if (!first) return std::move(first).error();
    std::string lines = *first;
    std::vector<BlobUrl> done{url};
    for (const std::string& text : origins) {
        auto origin = parse_blob_origin(text);
        if (!origin)
            return logic_error(fmt::format("{}.allowed_origins {}: {}", table, text, origin.error().message()));
        // Another scheme on the same host and port connects to the same address.
        const bool seen = std::any_of(done.begin(), done.end(), [&](const BlobUrl& d) {
            return d.port == origin->port && d.host == origin->host;
        });
        if (seen) continue;
        auto entry = resolve_blob_host(*origin, table);
        if (!entry) {
            Error e = std::move(entry).error();
            // resolve_blob_host names the url; this host came from allowed_origins.
            const std::string from = fmt::format("(the host of {}.url)", table);
            if (const auto at = e.context.find(from); at != std::string::npos)
                e.context.replace(at, from.size(), fmt::format("(from {}.allowed_origins)", table));
            return e;
        }
        lines += "\n" + *entry;
        done.push_back(*origin);
    }
    return lines;
}

}  // namespace cfs::supervisor
