// The host of a blob store's url ([blobs] or a [[volume]]), resolved by the supervisor once at start, for every
// worker: workers have no DNS (no /etc/resolv.conf, no NSS modules in their empty
// root, and no UDP in their seccomp policy), so each pins this answer with curl's
// CURLOPT_RESOLVE. Resolving here rather than in each worker before its sandbox keeps
// getaddrinfo (NSS, resolv.conf, dlopen) out of a process that parses untrusted
// input, costs one lookup per start instead of one per worker start (which would
// block the supervisor's loop during a failover), and makes a name that does not
// resolve a start-up error an operator sees at once. The price: a registry that
// moves to new addresses takes a `systemctl restart` (README, Configuration).
// The same holds for a store's `allowed_origins` (the token service, the blob store a
// registry redirects to): every host a worker may contact is resolved here.
#pragma once

#include <string>
#include <vector>

#include "common/blob_url.h"
#include "common/result.h"

namespace cfs::supervisor {

// At most this many addresses are handed to workers (curl tries them in order).
inline constexpr std::size_t kMaxBlobHostAddresses = 8;

// "host:port:addr[,addr]..." with IPv6 addresses in brackets, as CURLOPT_RESOLVE
// takes it. An Error names the host, the table whose url it is ("blobs", or
// `volume "img_a"`), and what getaddrinfo said.
[[nodiscard]] Result<std::string> resolve_blob_host(const BlobUrl& url, std::string_view table = "blobs");

// The entries of `url` and of every origin (common/blob_url.h, parse_blob_origin),
// one line each, '\n' between; an origin with the host and port of one before it
// adds no line. An Error names the host and which key it came from.
[[nodiscard]] Result<std::string> resolve_blob_hosts(const BlobUrl& url, const std::vector<std::string>& origins,
                                                     std::string_view table = "blobs");

}  // namespace cfs::supervisor
