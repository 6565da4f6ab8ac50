// Which origins (scheme, host, port) a remote worker may contact, and where its
// credentials may go. The blob server (blobs.url) and [blobs] allowed_origins (a
// registry's token service, the blob store it redirects to) are the only ones: the
// supervisor resolved exactly those hosts, and Landlock allows exactly their ports
// (worker/sandbox.h). A token realm or a redirect anywhere else is refused before any
// connection, with an error naming it, rather than failing later as EACCES from
// Landlock or as a name curl cannot resolve.
//
// Credentials (Basic, or a Bearer token) go to the blob server only; the token
// service gets the Basic credentials it asks for. A redirect to another origin is
// followed without any Authorization header: a presigned blob-store URL carries its
// own authorisation, and a registry's token must not leak to the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/blob_url.h"
#include "common/result.h"

namespace cfs::worker {

class OriginPolicy {
public:
    // `store` names the blob store in errors (common/blob_url.h, store_setting).
    OriginPolicy(BlobUrl server, std::vector<BlobUrl> others, std::string store = "blobs")
        : server_(std::move(server)), others_(std::move(others)), store_(std::move(store)) {}
    // `others` from the BlobStore's '\n'-separated origins; an Error names the bad one.
    [[nodiscard]] static Result<OriginPolicy> from_lines(BlobUrl server, std::string_view lines,
                                                         std::string store = "blobs");

    // The origin of `url` if the worker may contact it; otherwise an Error saying that
    // `what` ("its token service", "a redirect") names an origin it may not reach.
    [[nodiscard]] Result<BlobUrl> check(std::string_view url, std::string_view what) const;
    // Whether `url` is on the blob server's own origin (credentials go there only).
    [[nodiscard]] bool is_server(std::string_view url) const;
    // Every port the worker may connect to, each once: Landlock's rules.
    [[nodiscard]] std::vector<std::uint16_t> ports() const;
    [[nodiscard]] const BlobUrl& server() const { return server_; }

private:
    BlobUrl server_;
    std::vector<BlobUrl> others_;
    std::string store_;
};

// 301, 302, 303, 307, 308: answers whose Location the worker follows (if allowed).
[[nodiscard]] bool is_redirect(long status);

// Where one blob's GETs were last redirected to, kept for a while so that every range
// does not cost the registry a round trip (a presigned URL lives minutes; Docker's
// distribution signs them for 20). Forgotten when it fails: the next request asks
// the registry again.
class RedirectCache {
public:
    using Clock = std::chrono::steady_clock;
    explicit RedirectCache(std::chrono::seconds keep = std::chrono::seconds(300)) : keep_(keep) {}
    // The target, or empty when there is none or it is older than `keep`.
    [[nodiscard]] std::string target(Clock::time_point now) const { return now < until_ ? target_ : std::string(); }
    void remember(std::string target, Clock::time_point now) {
        target_ = std::move(target);
        until_ = now + keep_;
    }
    void forget() {
        target_.clear();
        until_ = {};
    }

private:
    std::chrono::seconds keep_;
    std::string target_;
    Clock::time_point until_{};
};

}  // namespace cfs::worker
