#include "common/blob_url.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace cfs {
namespace {

bool is_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

bool is_ipv6_char(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

// Unreserved and sub-delims of RFC 3986, '%' (escapes), ':' '@' and '/'; no '?' or '#'.
bool is_path_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("-._~!$&'()*+,;=%:@/").find(c) != std::string_view::npos;
}

}  // namespace

std::string BlobUrl::host_port() const {
    if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
    return fmt::format("{}:{}", host, port);
}

Result<BlobUrl> parse_blob_url(std::string_view text) {
    BlobUrl url;
    url.text = std::string(text);
    if (text.size() > kMaxBlobUrlBytes)
        return logic_error(fmt::format("expected a URL of at most {} bytes, got {} bytes", kMaxBlobUrlBytes, text.size()));
    std::string_view rest = text;
    if (rest.starts_with("http://")) {
        url.scheme = "http";
        url.port = 80;
        rest.remove_prefix(7);
    } else if (rest.starts_with("https://")) {
        url.scheme = "https";
        url.port = 443;
        rest.remove_prefix(8);
    } else {
        return logic_error("expected a URL starting with http:// or https://");
    }
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos)
        return logic_error("expected a path after the host, ending in '/' (the blob's name is appended to it)");
    std::string_view authority = rest.substr(0, slash);
    const std::string_view path = rest.substr(slash);
    if (authority.find('@') != std::string_view::npos)
        return logic_error("expected no user or password in the URL (it would show in logs and status)");
    std::string_view port_text;
    if (authority.starts_with('[')) {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return logic_error("expected ']' after an IPv6 address");
        const std::string_view v6 = authority.substr(1, close - 1);
        in6_addr parsed{};
        // The characters alone let through "[1.2.3.4]", which resolves but which curl
        // refuses as an address at every fetch.
        if (v6.empty() || !std::all_of(v6.begin(), v6.end(), is_ipv6_char) ||
            ::inet_pton(AF_INET6, std::string(v6).c_str(), &parsed) != 1)
            return logic_error("expected an IPv6 address between '[' and ']'");
        url.host = std::string(v6);
        authority.remove_prefix(close + 1);
        if (!authority.empty()) {
            if (authority.front() != ':') return logic_error("expected ':' and a port after ']'");
            port_text = authority.substr(1);
            if (port_text.empty()) return logic_error("expected a port number after ':'");
        }
    } else {
        const std::size_t colon = authority.find(':');
        const std::string_view host = authority.substr(0, colon);
        if (host.empty()) return logic_error("expected a host name after the scheme");
        if (!std::all_of(host.begin(), host.end(), is_host_char))
            return logic_error("expected a host name of letters, digits, '-' and '.' (or an IPv6 address in [])");
        if (host.size() > 253) return logic_error("expected a host name of at most 253 characters");
        url.host = std::string(host);
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) return logic_error("expected a port number after ':'");
        }
    }
    if (!port_text.empty()) {
        unsigned port = 0;
        auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
            return logic_error("expected a port number from 1 to 65535");
        url.port = static_cast<std::uint16_t>(port);
    }
    if (!path.ends_with('/'))
        return logic_error("expected the URL to end in '/' (the blob's name is appended to it)");
    for (char c : path) {
        if (c == '?' || c == '#') return logic_error("expected no query ('?') or fragment ('#') in the URL");
        if (!is_path_char(c)) return logic_error("expected a path of URL characters (no spaces or control characters; escape others with %XX)");
    }
    url.path = std::string(path);
    return url;
}

Result<BlobUrl> parse_blob_origin(std::string_view text) {
    const std::size_t scheme_end = text.find("://");
    const std::string_view after = scheme_end == std::string_view::npos ? text : text.substr(scheme_end + 3);
    const std::size_t slash = after.find('/');
    if (slash != std::string_view::npos && slash + 1 != after.size())
        return logic_error("expected an origin, scheme://host[:port], with no path");
    std::string with_path(text);
    if (slash == std::string_view::npos) with_path += '/';
    auto url = parse_blob_url(with_path);
    if (!url) return std::move(url).error();
    url->text = std::string(text);
    return url;
}

Result<BlobUrl> origin_of(std::string_view absolute_url) {
    const std::size_t scheme_end = absolute_url.find("://");
    if (scheme_end == std::string_view::npos) return logic_error("expected an absolute http:// or https:// URL");
    const std::size_t authority_end = absolute_url.find_first_of("/?#", scheme_end + 3);
    const std::string_view origin = absolute_url.substr(0, authority_end);
    auto url = parse_blob_url(fmt::format("{}/", origin));
    if (!url) return std::move(url).error();
    url->text = std::string(origin);
    return url;
}

bool same_origin(const BlobUrl& a, const BlobUrl& b) {
    auto lower = [](std::string s) {
        std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
        return s;
    };
    return a.scheme == b.scheme && a.port == b.port && lower(a.host) == lower(b.host);
}

std::string origin_text(const BlobUrl& url) { return fmt::format("{}://{}", url.scheme, url.host_port()); }

std::string store_setting(std::string_view store, std::string_view key) {
    return store == "blobs" ? fmt::format("blobs.{}", key) : fmt::format("{} {}", store, key);
}

std::string store_of_volume(std::string_view volume) {
    return volume.empty() ? std::string("blobs") : fmt::format("volume \"{}\"", volume);
}

std::string store_header(std::string_view volume) {
    return volume.empty() ? std::string("[blobs]") : fmt::format("[[volume]] \"{}\"", volume);
}

}  // namespace cfs
