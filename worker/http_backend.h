// Blobs fetched from an HTTP(S) server with range requests ([blobs] url): a blob is
// `<url><escaped name>`, its size comes from a HEAD request (Content-Length), and each
// READ is a `Range: bytes=a-b` GET answered with 206 Partial Content.
//
// Built for the worker's sandbox: everything that needs a file or the resolver is
// done in create(), before the worker enters it (curl_global_init, which may read
// OpenSSL's config; the CA bundle, handed to curl as a blob). The server's host is
// pinned with CURLOPT_RESOLVE to what the supervisor resolved (supervisor/blob_host.h),
// so curl never resolves a name; the seccomp policy has no UDP either.
//
// One curl easy handle per worker: it keeps the connection to the server alive
// between requests (the worker handles one request at a time). Each request has a
// connect timeout and a low-speed limit; a failure that may pass (no connection,
// timeout, reset, 5xx, 408, 429) is retried with exponential backoff and full jitter
// until a time budget is spent. One that will not (404, 403, a server ignoring Range,
// a blob that changed size) fails at once. Every error names the URL, the range and
// the HTTP status. A 401 is answered once per request as its challenge asks
// (worker/registry_auth.h). Redirects are not followed: a worker can reach only the
// address and port it was given.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/blob_url.h"
#include "worker/blob_backend.h"

namespace cfs::worker {

struct FetchPolicy {
    std::chrono::milliseconds connect_timeout{5'000};
    // A transfer slower than this many bytes per second for low_speed_time is cut.
    long low_speed_limit = 1024;
    std::chrono::seconds low_speed_time{10};
    // Retries of one request stop when the next would start after this much time.
    std::chrono::milliseconds retry_budget{30'000};
    std::chrono::milliseconds first_backoff{100};
    std::chrono::milliseconds max_backoff{2'000};
};

struct HttpOptions {
    BlobUrl url;
    // CURLOPT_RESOLVE entry "host:port:addr[,addr]"; empty: curl may resolve (tests).
    std::string resolve;
    // PEM CA certificates for https (read before the sandbox); empty for http.
    std::string ca_bundle;
    FetchPolicy policy;
    // Called once per failed attempt (retried or not): the worker counts them.
    std::function<void()> on_fetch_error;
    // "user:password" for a server or token service that asks (worker/registry_auth.h);
    // empty: anonymous. Never logged.
    std::string credentials;
};

class HttpBackend final : public BlobBackend {
public:
    [[nodiscard]] static Result<std::unique_ptr<HttpBackend>> create(HttpOptions options);
    ~HttpBackend() override;

    // ENOENT for a blob the server does not have (404, 410), EACCES for 401/403, EIO
    // for everything else that fails.
    Result<std::unique_ptr<BlobSource>> open(std::string_view name) override;

    [[nodiscard]] std::uint64_t fetch_errors() const { return fetch_errors_; }

    // Used by the blobs it opens: fills `buffer` from `offset` (clamped to `size`).
    [[nodiscard]] Result<std::size_t> read_range(const std::string& url, std::uint64_t size,
                                                 std::span<std::byte> buffer, std::uint64_t offset);

private:
    struct Curl;
    explicit HttpBackend(HttpOptions options, std::unique_ptr<Curl> curl);
    [[nodiscard]] Result<std::uint64_t> fetch_size(const std::string& url);
    // Answers a 401's challenge: Basic credentials, or a Bearer token from the realm.
    [[nodiscard]] Status authorize(std::string_view challenge);
    [[nodiscard]] bool same_origin(std::string_view url) const;

    HttpOptions options_;
    std::unique_ptr<Curl> curl_;
    std::uint64_t fetch_errors_ = 0;
    std::uint64_t jitter_state_;
};

// The path the worker reads the CA bundle from before its sandbox, for https URLs
// (Debian's ca-certificates).
inline constexpr const char* kCaBundlePath = "/etc/ssl/certs/ca-certificates.crt";

}  // namespace cfs::worker
