#include "worker/http_backend.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "common/log.h"
#include "worker/curl_api.h"

namespace cfs::worker {

struct HttpBackend::Curl {
    const CurlApi& api;
    CURL* easy = nullptr;
    curl_slist* resolve = nullptr;
    curl_slist* auth_header = nullptr;  // "Authorization: Bearer ..." once there is a token
    char error[CURL_ERROR_SIZE] = {};
    explicit Curl(const CurlApi& a) : api(a) {}
    Curl(const Curl&) = delete;
    Curl& operator=(const Curl&) = delete;
    ~Curl() {
        if (easy != nullptr) api.easy_cleanup(easy);
        if (resolve != nullptr) api.slist_free_all(resolve);
        if (auth_header != nullptr) api.slist_free_all(auth_header);
    }
};

using Clock = std::chrono::steady_clock;

// The Bearer token in use, and the challenge it answered (to fetch the next one).
struct HttpBackend::Token {
    AuthChallenge challenge;
    std::string token_url;  // realm?service=...&scope=..., for messages
    Clock::time_point refresh_at;
    Clock::time_point expires_at;
};

namespace http_detail {

// One attempt's outcome, before the decision to retry.
struct Attempt {
    CURLcode code = CURLE_OK;
    long status = 0;
    bool transient = false;
    int errnum = EIO;
    std::string why;  // empty: success
    bool unauthorized = false;  // 401: `challenge` is its WWW-Authenticate
    std::string challenge;
};

// What the response told us, gathered by curl's callbacks.
struct Response {
    std::span<std::byte> buffer;  // body bytes go here (range GET)
    std::size_t received = 0;
    bool overflow = false;
    // Content-Range: bytes <first>-<last>/<total>
    bool has_range = false;
    std::uint64_t range_first = 0;
    std::uint64_t range_last = 0;
    std::uint64_t range_total = 0;
    std::string www_authenticate;
};

}  // namespace http_detail

using http_detail::Attempt;
using http_detail::Response;

// What one request asks for and how an answer that is not a redirect is judged.
struct HttpBackend::Exchange {
    std::string url;    // on the blob server
    std::string what;   // "GET <url> bytes=a-b": how errors name the request
    bool head = false;
    std::string range;  // "a-b" (GET)
    std::span<std::byte> buffer;
    RedirectCache* redirect = nullptr;  // a blob's GETs: where they were sent last
    std::function<void(Attempt&, const Response&)> judge;
};

namespace {

// A 401 (both HEAD and GET): the attempt carries the challenge, for authorize().
bool asks_for_authentication(Attempt& a, const Response& response) {
    if (a.status != 401) return false;
    a.unauthorized = true;
    a.challenge = response.www_authenticate;
    a.errnum = EACCES;
    a.why = "the server asks for authentication";
    return true;
}

std::size_t on_body(char* data, std::size_t, std::size_t n, void* user) {
    auto* r = static_cast<Response*>(user);
    if (n > r->buffer.size() - r->received) {
        r->overflow = true;
        return 0;  // CURLE_WRITE_ERROR: the server sent more than the range
    }
    std::memcpy(r->buffer.data() + r->received, data, n);
    r->received += n;
    return n;
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
}

std::size_t on_header(char* data, std::size_t, std::size_t n, void* user) {
    auto* r = static_cast<Response*>(user);
    std::string_view line(data, n);
    // Trailing white space is no part of a field's value (RFC 9110, 5.5).
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ' || line.back() == '\t'))
        line.remove_suffix(1);
    // A new status line (after a 100 Continue, say): what came before is not this answer's.
    if (line.starts_with("HTTP/")) {
        r->www_authenticate.clear();
        r->has_range = false;
    }
    // Every WWW-Authenticate line, joined as one list (RFC 9110, 5.3): a server may
    // offer Basic on one line and Bearer on the next. Bounded: it is the server's text.
    constexpr std::string_view kAuth = "www-authenticate:";
    constexpr std::size_t kMaxChallengeText = 16 * 1024;
    if (line.size() > kAuth.size()) {
        std::string name(line.substr(0, kAuth.size()));
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        const std::string_view value = line.substr(kAuth.size());
        if (name == kAuth && r->www_authenticate.size() + value.size() + 2 <= kMaxChallengeText) {
            if (!r->www_authenticate.empty()) r->www_authenticate += ", ";
            r->www_authenticate += value;
        }
    }
    constexpr std::string_view kName = "content-range:";
    if (line.size() < kName.size()) return n;
    std::string lower(line.substr(0, kName.size()));
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower != kName) return n;
    std::string_view v = line.substr(kName.size());
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    if (!v.starts_with("bytes ")) return n;
    v.remove_prefix(6);
    const std::size_t dash = v.find('-'), slash = v.find('/');
    if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return n;
    r->has_range = parse_u64(v.substr(0, dash), r->range_first) &&
                   parse_u64(v.substr(dash + 1, slash - dash - 1), r->range_last) &&
                   parse_u64(v.substr(slash + 1), r->range_total);
    return n;
}

bool transient_curl_error(CURLcode code) {
    switch (code) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            return true;
        default: return false;
    }
}

bool transient_status(long status) { return status >= 500 || status == 408 || status == 429; }

int errno_for_status(long status) {
    if (status == 404 || status == 410) return ENOENT;
    if (status == 401 || status == 403) return EACCES;
    return EIO;
}

// A redirect target as messages show it: without its query, which for a presigned
// blob-store URL is a credential.
std::string without_query(std::string_view url) { return std::string(url.substr(0, url.find('?'))); }

}  // namespace

Result<std::unique_ptr<HttpBackend>> HttpBackend::create(HttpOptions options) {
    auto origins = OriginPolicy::from_lines(options.url, options.allowed_origins, options.store);
    if (!origins) return std::move(origins).error();
    auto loaded = load_curl();
    if (!loaded) return std::move(loaded).error();
    const CurlApi& api = **loaded;
    // Idempotent after the first call; may read OpenSSL's config, so before the sandbox.
    if (const CURLcode rc = api.global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK)
        return logic_error(fmt::format("initialising libcurl: {}", api.easy_strerror(rc)));
    auto curl = std::make_unique<Curl>(api);
    curl->easy = api.easy_init();
    if (curl->easy == nullptr) return logic_error("initialising libcurl: no easy handle");
    for (std::string_view rest = options.resolve; !rest.empty();) {
        const std::size_t nl = rest.find('\n');
        const std::string entry(rest.substr(0, nl));
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        if (entry.empty()) continue;
        curl_slist* grown = api.slist_append(curl->resolve, entry.c_str());
        if (grown == nullptr) return logic_error("initialising libcurl: out of memory");
        curl->resolve = grown;
    }
    CURL* e = curl->easy;
    bool ok = api.easy_setopt(e, CURLOPT_ERRORBUFFER, curl->error) == CURLE_OK &&
              api.easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              api.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
              // Redirects are followed by perform(), which checks where they go.
              api.easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
              api.easy_setopt(e, CURLOPT_USERAGENT, "cfsupervisor-worker") == CURLE_OK &&
              api.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                               static_cast<long>(options.policy.connect_timeout.count())) == CURLE_OK &&
              api.easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, options.policy.low_speed_limit) == CURLE_OK &&
              api.easy_setopt(e, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.policy.low_speed_time.count())) ==
                  CURLE_OK &&
              api.easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) == CURLE_OK &&
              api.easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
              api.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              // No file is opened in the sandbox: no CA file or directory by path.
              api.easy_setopt(e, CURLOPT_CAINFO, nullptr) == CURLE_OK &&
              api.easy_setopt(e, CURLOPT_CAPATH, nullptr) == CURLE_OK;
    if (ok && curl->resolve != nullptr) ok = api.easy_setopt(e, CURLOPT_RESOLVE, curl->resolve) == CURLE_OK;
    if (ok && !options.ca_bundle.empty()) {
        curl_blob blob{options.ca_bundle.data(), options.ca_bundle.size(), CURL_BLOB_COPY};
        ok = api.easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob) == CURLE_OK;
    }
    if (!ok) return logic_error(fmt::format("setting up libcurl: {}", curl->error[0] ? curl->error : "an option was refused"));
    return std::unique_ptr<HttpBackend>(new HttpBackend(std::move(options), std::move(*origins), std::move(curl)));
}

HttpBackend::HttpBackend(HttpOptions options, OriginPolicy origins, std::unique_ptr<Curl> curl)
    : options_(std::move(options)),
      origins_(std::move(origins)),
      curl_(std::move(curl)),
      jitter_state_(static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()) ^
                    (static_cast<std::uint64_t>(::getpid()) << 32) ^ 0x9e3779b97f4a7c15ULL) {}

HttpBackend::~HttpBackend() = default;

void HttpBackend::set_authorization(std::string_view url) {
    const CurlApi& api = curl_->api;
    CURL* e = curl_->easy;
    const bool server = origins_.is_server(url);
    api.easy_setopt(e, CURLOPT_HTTPHEADER, server && token_ ? curl_->auth_header : nullptr);
    if (server && basic_) {
        api.easy_setopt(e, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
        api.easy_setopt(e, CURLOPT_USERPWD, options_.credentials.c_str());
    } else {
        api.easy_setopt(e, CURLOPT_USERPWD, nullptr);
    }
}

Status HttpBackend::perform(Exchange& x) {
    const CurlApi& api = curl_->api;
    CURL* e = curl_->easy;
    const FetchPolicy& policy = options_.policy;
    const auto deadline = Clock::now() + policy.retry_budget;
    auto backoff = policy.first_backoff;
    bool reauthorized = false;
    bool left_redirect = false;  // a redirect target failed once: asked the server again
    unsigned redirects = 0;
    std::string target = x.url;
    if (x.redirect != nullptr)
        if (std::string cached = x.redirect->target(Clock::now()); !cached.empty()) target = std::move(cached);
    Response response;
    for (unsigned attempt = 1;; ++attempt) {
        const bool on_server = origins_.is_server(target);
        if (on_server) refresh_token_if_due();
        response = Response{};
        response.buffer = x.buffer;
        curl_->error[0] = '\0';
        api.easy_setopt(e, CURLOPT_URL, target.c_str());
        if (x.head) {
            api.easy_setopt(e, CURLOPT_NOBODY, 1L);
        } else {
            api.easy_setopt(e, CURLOPT_NOBODY, 0L);
            api.easy_setopt(e, CURLOPT_HTTPGET, 1L);
        }
        // Sent again, as it was, to wherever a redirect leads.
        api.easy_setopt(e, CURLOPT_RANGE, x.range.empty() ? nullptr : x.range.c_str());
        api.easy_setopt(e, CURLOPT_TIMEOUT_MS,
                        static_cast<long>(policy.attempt_time.count() +
                                          static_cast<long long>(x.buffer.size() * 1000 /
                                                                 static_cast<std::size_t>(policy.min_rate))));
        api.easy_setopt(e, CURLOPT_HEADERDATA, &response);
        api.easy_setopt(e, CURLOPT_WRITEDATA, &response);
        set_authorization(target);
        const CURLcode code = api.easy_perform(e);
        Attempt a;
        a.code = code;
        api.easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a.status);
        if (code != CURLE_OK && code != CURLE_WRITE_ERROR) {
            a.transient = transient_curl_error(code);
            a.why = fmt::format("{}{}{}", api.easy_strerror(code), curl_->error[0] ? ": " : "", curl_->error);
        } else if (is_redirect(a.status)) {
            char* location = nullptr;
            api.easy_getinfo(e, CURLINFO_REDIRECT_URL, &location);
            const std::string next = location != nullptr ? location : "";
            if (next.empty()) {
                a.why = "the server answered with a redirect that has no Location";
            } else if (++redirects > policy.max_redirects) {
                a.why = fmt::format("more than {} redirects, the last to {}", policy.max_redirects, without_query(next));
            } else if (auto allowed = origins_.check(next, "its redirect to"); !allowed) {
                a.errnum = EACCES;
                a.why = allowed.error().message();
            } else {
                log::debug("{}: HTTP {}, redirected to {}", x.what, a.status, without_query(next));
                target = next;
                --attempt;  // following a redirect is not another attempt
                continue;
            }
        } else {
            x.judge(a, response);
        }
        if (a.why.empty()) {
            if (x.redirect != nullptr) {
                if (target != x.url) x.redirect->remember(target, Clock::now());
                else x.redirect->forget();
            }
            return {};
        }
        if (a.unauthorized && on_server) {
            if (!reauthorized) {
                // Answered once per request: credentials, or a (new) token.
                reauthorized = true;
                bool transient = false;
                auto done = authorize(a.challenge, transient);
                if (done) {
                    --attempt;
                    continue;
                }
                a.why = fmt::format("the server asks for authentication, and {}", done.error().message());
                a.transient = transient;
                if (transient) reauthorized = false;  // the token service may answer next time
            } else if (token_ != nullptr) {
                a.why = fmt::format("the server refused the token from {}", token_->token_url);
            } else if (basic_) {
                a.why = fmt::format("the server refused the credentials from {}",
                                    store_setting(options_.store, "credentials"));
            }
        }
        // A redirect target that fails (a presigned URL that expired, a store that is
        // down): the server is asked again, once, and may send us somewhere new.
        if (target != x.url) {
            a.why += fmt::format(" (at {}, where the server redirected)", without_query(target));
            if (x.redirect != nullptr) x.redirect->forget();
            target = x.url;
            if (!left_redirect) {
                left_redirect = true;
                a.transient = true;
            }
        }
        ++fetch_errors_;
        if (options_.on_fetch_error) options_.on_fetch_error();
        const std::string status = a.status != 0 ? fmt::format("HTTP {}", a.status) : "no HTTP status";
        // Full jitter: sleep a uniform fraction of the backoff, so workers retrying
        // the same server spread out.
        jitter_state_ ^= jitter_state_ << 13;
        jitter_state_ ^= jitter_state_ >> 7;
        jitter_state_ ^= jitter_state_ << 17;
        const auto sleep = std::chrono::milliseconds(
            static_cast<long>(jitter_state_ % static_cast<std::uint64_t>(backoff.count() + 1)));
        const bool retry = a.transient && Clock::now() + sleep < deadline;
        if (!retry) {
            const std::string message =
                a.transient ? fmt::format("{}: {} ({}); gave up after {} attempt(s) within the {} ms retry budget",
                                          x.what, a.why, status, attempt, policy.retry_budget.count())
                            : fmt::format("{}: {} ({})", x.what, a.why, status);
            return sys_error(a.errnum, message);
        }
        log::warning("{}: {} ({}); attempt {} failed, retrying in {} ms", x.what, a.why, status, attempt, sleep.count());
        (void)::poll(nullptr, 0, static_cast<int>(sleep.count()));
        backoff = std::min(backoff * 2, policy.max_backoff);
        // Each attempt may follow max_redirects: a redirect to a store that keeps
        // failing must not use the request's redirects up (and be called a loop).
        redirects = 0;
    }
}

Result<std::uint64_t> HttpBackend::fetch_size(const std::string& url) {
    std::uint64_t size = 0;
    Exchange x;
    x.url = url;
    x.what = fmt::format("HEAD {}", url);
    x.head = true;
    x.judge = [&](Attempt& a, const Response& response) {
        if (asks_for_authentication(a, response)) return;
        if (a.status != 200) {
            a.transient = transient_status(a.status);
            a.errnum = errno_for_status(a.status);
            a.why = "the server did not answer 200 OK";
            return;
        }
        curl_off_t length = -1;
        curl_->api.easy_getinfo(curl_->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        if (length < 0) {
            a.why = "the server's answer has no Content-Length";
            return;
        }
        size = static_cast<std::uint64_t>(length);
    };
    if (auto done = perform(x); !done) return std::move(done).error();
    return size;
}

Result<std::size_t> HttpBackend::read_range(const std::string& url, std::uint64_t size, std::span<std::byte> buffer,
                                            std::uint64_t offset, RedirectCache& redirect) {
    if (offset >= size || buffer.empty()) return std::size_t{0};
    const std::uint64_t want = std::min<std::uint64_t>(buffer.size(), size - offset);
    const std::uint64_t last = offset + want - 1;
    Exchange x;
    x.url = url;
    x.range = fmt::format("{}-{}", offset, last);
    x.what = fmt::format("GET {} bytes={}", url, x.range);
    x.buffer = buffer.first(static_cast<std::size_t>(want));
    x.redirect = &redirect;
    x.judge = [&](Attempt& a, const Response& response) {
        if (asks_for_authentication(a, response)) return;
        if (a.status == 200) {
            a.why = "the server ignored the Range header (200 instead of 206 Partial Content)";
            return;
        }
        if (response.overflow) {
            a.why = fmt::format("the server sent more than the {} bytes asked for", want);
            return;
        }
        if (a.status != 206) {
            a.transient = transient_status(a.status);
            a.errnum = errno_for_status(a.status);
            a.why = "the server did not answer 206 Partial Content";
            return;
        }
        if (!response.has_range || response.range_first != offset || response.range_last != last) {
            a.why = "the answer's Content-Range does not match the range asked for";
            return;
        }
        if (response.range_total != size) {
            a.why = fmt::format("the blob is now {} bytes, not the {} it had when opened", response.range_total, size);
            return;
        }
        if (response.received != want) {
            a.transient = true;  // cut short: try again
            a.why = fmt::format("got {} of {} bytes", response.received, want);
        }
    };
    if (auto done = perform(x); !done) return std::move(done).error();
    return static_cast<std::size_t>(want);
}

Status HttpBackend::authorize(std::string_view challenge_text, bool& transient) {
    transient = false;
    const auto offered = parse_challenges(challenge_text);
    const AuthChallenge* challenge = choose_challenge(offered);
    if (challenge == nullptr) return logic_error("no challenge this worker understands in its WWW-Authenticate");
    const bool basic_offered = std::any_of(offered.begin(), offered.end(),
                                           [](const AuthChallenge& c) { return c.scheme == "basic"; });
    if (challenge->scheme == "bearer") {
        auto done = authorize_bearer(*challenge, transient);
        // A server that also takes Basic is answered with it when the token service is
        // out of reach for good (not on an allowed origin, refusing us), as it was
        // before Bearer was preferred.
        if (done || transient || !basic_offered || options_.credentials.empty()) return done;
        log::debug("{}; answering its Basic challenge instead", done.error().message());
    } else if (challenge->scheme != "basic") {
        return logic_error(fmt::format("its authentication scheme '{}' is not supported (Basic and Bearer are)",
                                       challenge->scheme));
    }
    if (options_.credentials.empty())
        return logic_error(fmt::format("it asks for Basic credentials, and {} gives none",
                                       store_setting(options_.store, "credentials")));
    basic_ = true;
    return {};
}

Status HttpBackend::authorize_bearer(const AuthChallenge& challenge, bool& transient) {
    const auto realm = challenge.params.find("realm");
    if (realm == challenge.params.end() || realm->second.empty())
        return logic_error("its Bearer challenge names no realm");
    if (auto allowed = origins_.check(realm->second, "its token service"); !allowed) return std::move(allowed).error();
    return fetch_token(challenge, transient);
}

Status HttpBackend::fetch_token(const AuthChallenge& challenge, bool& transient) {
    transient = false;
    const CurlApi& api = curl_->api;
    CURL* e = curl_->easy;
    std::string token_url = challenge.params.at("realm");
    char sep = token_url.find('?') == std::string::npos ? '?' : '&';
    for (const char* key : {"service", "scope"}) {
        const auto it = challenge.params.find(key);
        if (it == challenge.params.end()) continue;
        char* escaped = api.easy_escape(e, it->second.data(), static_cast<int>(it->second.size()));
        if (escaped == nullptr) return logic_error("escaping the token request");
        token_url += fmt::format("{}{}={}", sep, key, escaped);
        api.free(escaped);
        sep = '&';
    }
    // The token request: the credentials as Basic if there are any (the token service
    // is what they are for), never an old token.
    std::vector<std::byte> body(64 * 1024);
    Response response;
    response.buffer = body;
    curl_->error[0] = '\0';
    api.easy_setopt(e, CURLOPT_URL, token_url.c_str());
    api.easy_setopt(e, CURLOPT_NOBODY, 0L);
    api.easy_setopt(e, CURLOPT_HTTPGET, 1L);
    api.easy_setopt(e, CURLOPT_RANGE, nullptr);
    api.easy_setopt(e, CURLOPT_HTTPHEADER, nullptr);
    api.easy_setopt(e, CURLOPT_HEADERDATA, &response);
    api.easy_setopt(e, CURLOPT_WRITEDATA, &response);
    if (!options_.credentials.empty()) {
        api.easy_setopt(e, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
        api.easy_setopt(e, CURLOPT_USERPWD, options_.credentials.c_str());
    } else {
        api.easy_setopt(e, CURLOPT_USERPWD, nullptr);
    }
    const CURLcode code = api.easy_perform(e);
    long status = 0;
    api.easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    api.easy_setopt(e, CURLOPT_USERPWD, nullptr);
    if (code != CURLE_OK) {
        transient = transient_curl_error(code);
        return logic_error(fmt::format("its token service GET {} failed: {}{}{}", token_url, api.easy_strerror(code),
                                       curl_->error[0] ? ": " : "", curl_->error));
    }
    if (status != 200) {
        transient = transient_status(status);
        return logic_error(fmt::format("its token service GET {} answered HTTP {}{}", token_url, status,
                                       options_.credentials.empty()
                                           ? fmt::format(" (no {} given)", store_setting(options_.store, "credentials"))
                                           : std::string()));
    }
    auto grant = token_from_json(std::string_view(reinterpret_cast<const char*>(body.data()), response.received));
    if (!grant) return logic_error(fmt::format("GET {}: {}", token_url, grant.error().message()));
    curl_slist* header = api.slist_append(nullptr, ("Authorization: Bearer " + grant->token).c_str());
    if (header == nullptr) return logic_error("out of memory for the token");
    if (curl_->auth_header != nullptr) api.slist_free_all(curl_->auth_header);
    curl_->auth_header = header;
    const auto now = Clock::now();
    token_ = std::make_unique<Token>(Token{challenge, token_url, now + token_refresh_after(grant->expires_in),
                                           now + grant->expires_in});
    log::debug("got a token from {} for {} s", token_url, grant->expires_in.count());
    return {};
}

void HttpBackend::refresh_token_if_due() {
    if (token_ == nullptr) return;
    const auto now = Clock::now();
    if (now < token_->refresh_at) return;
    const AuthChallenge challenge = token_->challenge;
    bool transient = false;
    if (auto renewed = fetch_token(challenge, transient); !renewed) {
        // Tried again in a while, not before every request while the service is down.
        token_->refresh_at = now + std::chrono::seconds(5);
        log::warning("renewing the token before it expires: {}; the old one is used until the server refuses it",
                     renewed.error().message());
    }
}

namespace {

class HttpBlob final : public BlobSource {
public:
    HttpBlob(HttpBackend& backend, std::string url, std::uint64_t size, std::chrono::seconds keep_redirect)
        : backend_(backend), url_(std::move(url)), size_(size), redirect_(keep_redirect) {}
    std::uint64_t size() const override { return size_; }
    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override {
        return backend_.read_range(url_, size_, buffer, offset, redirect_);
    }

private:
    HttpBackend& backend_;
    std::string url_;
    std::uint64_t size_;
    RedirectCache redirect_;
};

}  // namespace

Result<std::string> HttpBackend::url_of(std::string_view name) const {
    const CurlApi& api = curl_->api;
    char* escaped = api.easy_escape(curl_->easy, name.data(), static_cast<int>(name.size()));
    if (escaped == nullptr) return sys_error(ENOMEM, "escaping the blob name for its URL");
    std::string path_part(escaped);
    api.free(escaped);
    // ':' is allowed in a path segment, and OCI blob names ("sha256:...") are asked
    // for with it as it is.
    for (std::size_t at; (at = path_part.find("%3A")) != std::string::npos;) path_part.replace(at, 3, ":");
    return options_.url.text + path_part;
}

Result<std::unique_ptr<BlobSource>> HttpBackend::open(std::string_view name) {
    auto url = url_of(name);
    if (!url) return std::move(url).error();
    auto size = fetch_size(*url);
    if (!size) return std::move(size).error();
    return std::unique_ptr<BlobSource>(
        std::make_unique<HttpBlob>(*this, std::move(*url), *size, options_.policy.redirect_cache));
}

Result<std::unique_ptr<BlobSource>> HttpBackend::open_with_size(std::string_view name, std::uint64_t size) {
    auto url = url_of(name);
    if (!url) return std::move(url).error();
    return std::unique_ptr<BlobSource>(
        std::make_unique<HttpBlob>(*this, std::move(*url), size, options_.policy.redirect_cache));
}

}  // namespace cfs::worker
