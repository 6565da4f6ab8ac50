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
// (worker/registry_auth.h); a Bearer token is renewed before its expires_in runs
// out. Redirects (a registry sending a blob GET to its blob store) are followed by
// hand, not by curl, to origins worker/origin_policy.h allows only, without the
// Authorization header when they leave the blob server, with the same Range; a
// blob's GET redirect is kept for a while (RedirectCache).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/blob_url.h"
#include "worker/blob_backend.h"
#include "worker/origin_policy.h"
#include "worker/registry_auth.h"

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
    // One attempt (its redirects included) is cut after attempt_time plus a second
    // per min_rate bytes asked for: the low-speed cut alone let a server drip a 4 MiB
    // READ out at just over 1 KiB/s for an hour, with the worker's every other
    // request waiting behind it.
    std::chrono::milliseconds attempt_time{30'000};
    long min_rate = 64 * 1024;
    // Redirects one attempt follows before it is an error (a loop, most likely).
    unsigned max_redirects = 5;
    // How long a blob's GET redirect target is used without asking the server again.
    std::chrono::seconds redirect_cache{300};
};

struct HttpOptions {
    BlobUrl url;
    // CURLOPT_RESOLVE entries "host:port:addr[,addr]", '\n' between them (the
    // BlobStore's resolve); empty: curl may resolve (tests).
    std::string resolve;
    // PEM CA certificates for https (read before the sandbox); empty for http.
    std::string ca_bundle;
    FetchPolicy policy;
    // Called once per failed attempt (retried or not): the worker counts them.
    std::function<void()> on_fetch_error;
    // "user:password" for a server or token service that asks (worker/registry_auth.h);
    // empty: anonymous. Never logged.
    std::string credentials;
    // Origins besides url's the worker may contact ('\n' between them; the
    // BlobStore's origins): a token realm, a blob store (worker/origin_policy.h).
    std::string allowed_origins;
    // How errors name this store's settings (common/blob_url.h, store_setting):
    // "blobs", or `volume "img_a"`.
    std::string store = "blobs";
};

class HttpBackend final : public BlobBackend {
public:
    [[nodiscard]] static Result<std::unique_ptr<HttpBackend>> create(HttpOptions options);
    ~HttpBackend() override;

    // ENOENT for a blob the server does not have (404, 410), EACCES for 401/403, EIO
    // for everything else that fails.
    Result<std::unique_ptr<BlobSource>> open(std::string_view name) override;
    // No HEAD: the size is the object's. A blob the server does not have shows at the
    // first read (ENOENT for a 404), as it would had it gone since the HEAD.
    Result<std::unique_ptr<BlobSource>> open_with_size(std::string_view name, std::uint64_t size) override;

    [[nodiscard]] std::uint64_t fetch_errors() const { return fetch_errors_; }
    // The TCP ports this worker must be able to connect to (Landlock).
    [[nodiscard]] std::vector<std::uint16_t> connect_ports() const { return origins_.ports(); }

    // Used by the blobs it opens: fills `buffer` from `offset` (clamped to `size`);
    // `redirect` is the blob's own.
    [[nodiscard]] Result<std::size_t> read_range(const std::string& url, std::uint64_t size,
                                                 std::span<std::byte> buffer, std::uint64_t offset,
                                                 RedirectCache& redirect);

private:
    struct Curl;
    struct Exchange;
    struct Token;
    HttpBackend(HttpOptions options, OriginPolicy origins, std::unique_ptr<Curl> curl);
    [[nodiscard]] Result<std::uint64_t> fetch_size(const std::string& url);
    // The blob's URL: blobs.url and its name, escaped.
    [[nodiscard]] Result<std::string> url_of(std::string_view name) const;
    // One request with retries, redirects and authentication; `exchange` says what
    // to ask and judges each answer.
    [[nodiscard]] Status perform(Exchange& exchange);
    // Answers a 401's challenge: a Bearer token from the realm, else (or when the
    // token service is out of reach for good) Basic credentials.
    // Sets `transient` when the token service may answer later (no connection, 5xx).
    [[nodiscard]] Status authorize(std::string_view challenge, bool& transient);
    // A Bearer challenge: its realm on an allowed origin, then a token from it.
    [[nodiscard]] Status authorize_bearer(const AuthChallenge& challenge, bool& transient);
    // Fetches a token as `challenge` (a Bearer one) says.
    [[nodiscard]] Status fetch_token(const AuthChallenge& challenge, bool& transient);
    // Renews the token when token_refresh_after() has passed; a failure is logged and
    // the old token kept (the server's 401 then says what it thinks).
    void refresh_token_if_due();
    // The Authorization (Basic or Bearer) for a request to `url`: on the blob server's
    // origin only.
    void set_authorization(std::string_view url);

    HttpOptions options_;
    OriginPolicy origins_;
    std::unique_ptr<Curl> curl_;
    std::unique_ptr<Token> token_;
    bool basic_ = false;  // the server asked for Basic credentials
    std::uint64_t fetch_errors_ = 0;
    std::uint64_t jitter_state_;
};

// The path the worker reads the CA bundle from before its sandbox, for https URLs
// (Debian's ca-certificates).
inline constexpr const char* kCaBundlePath = "/etc/ssl/certs/ca-certificates.crt";

}  // namespace cfs::worker
