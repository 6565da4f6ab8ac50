// `[blobs] url`: where remote blobs live, as an HTTP(S) prefix that a blob's name is
// appended to ("http://registry.local:8080/blobs/" + "img_a"). Parsed here, once,
// for the config checker (errors), the supervisor (which resolves the host) and the
// worker (which pins that resolution and connects to the port).
//
// Only what the worker can fetch without surprises is accepted: http or https, a
// host name or an IP literal ([...] for IPv6), an optional port, a path that ends in
// '/'. No user:password@ (credentials in a URL end up in logs and `status`; slice 2
// of issue 7 hands them over apart), no query or fragment, no spaces or control
// characters.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace cfs {

struct BlobUrl {
    std::string scheme;  // "http" or "https"
    std::string host;    // as written, without the brackets of an IPv6 literal
    std::uint16_t port = 0;  // explicit or the scheme's default
    std::string path;    // starts and ends with '/'
    std::string text;    // the whole URL as written

    // "host:port" as curl's CURLOPT_RESOLVE and CURLOPT_CONNECT_TO name it
    // ("[::1]:80" for an IPv6 literal).
    [[nodiscard]] std::string host_port() const;
    bool operator==(const BlobUrl&) const = default;
};

// A URL of at most this many bytes travels in Init with room to spare.
inline constexpr std::size_t kMaxBlobUrlBytes = 512;

// Errors say what is wrong with the URL ("expected ... , got ..."); the caller adds
// where it came from.
[[nodiscard]] Result<BlobUrl> parse_blob_url(std::string_view text);

// An origin, "scheme://host[:port]" with an optional '/' after it, as
// `[blobs] allowed_origins` lists them: the path of the result is "/".
[[nodiscard]] Result<BlobUrl> parse_blob_origin(std::string_view text);

// The scheme, host and port of an absolute http(s) URL (a token realm, a redirect's
// Location), path "/"; an Error for anything else (another scheme, user:password@,
// a bad host or port).
[[nodiscard]] Result<BlobUrl> origin_of(std::string_view absolute_url);

// Same scheme, host (letters in any case) and port: what a worker may send its
// credentials to, and what the Landlock and CURLOPT_RESOLVE entries are made for.
[[nodiscard]] bool same_origin(const BlobUrl& a, const BlobUrl& b);

// "scheme://host:port", for messages.
[[nodiscard]] std::string origin_text(const BlobUrl& url);

// How messages name a blob store's setting (common/config.h): store "blobs" gives
// "blobs.url"; store `volume "img_a"` (a [[volume]] table) gives `volume "img_a" url`.
[[nodiscard]] std::string store_setting(std::string_view store, std::string_view key);
// A blob store by its [[volume]] name ("" for [blobs]): its name as store_setting
// takes it ("blobs", `volume "img_a"`), and its table header ("[blobs]",
// `[[volume]] "img_a"`).
[[nodiscard]] std::string store_of_volume(std::string_view volume);
[[nodiscard]] std::string store_header(std::string_view volume);

}  // namespace cfs
