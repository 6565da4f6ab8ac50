// Issue 7, the rest of the OCI flows: a token service on another origin, tokens
// renewed before their expires_in, and registry redirects to a blob store. The pure
// parts (origins, the redirect cache, the supervisor's resolution of every host) on
// their own, then the backend against two or three test servers on loopback.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/blob_reads.h"
#include "common/blob_url.h"
#include "supervisor/blob_host.h"
#include "tests/unit/http_test_server.h"
#include "worker/http_backend.h"
#include "worker/origin_policy.h"

using namespace cfs;
using cfs::testing::HttpTestServer;

namespace {

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 37 + i / 1000) & 0xff);
    return s;
}

worker::FetchPolicy quick_policy() {
    worker::FetchPolicy p;
    p.connect_timeout = std::chrono::milliseconds(500);
    p.retry_budget = std::chrono::milliseconds(3000);
    p.first_backoff = std::chrono::milliseconds(10);
    p.max_backoff = std::chrono::milliseconds(100);
    return p;
}

// A backend for `registry`'s /blobs/ that may also reach `allowed` (origins, '\n'
// between them); curl resolves 127.0.0.1 itself.
std::unique_ptr<worker::HttpBackend> backend_for(const HttpTestServer& registry, std::string allowed,
                                                 std::string credentials = {},
                                                 worker::FetchPolicy policy = quick_policy()) {
    auto url = parse_blob_url(registry.url());
    REQUIRE(url);
    auto created = worker::HttpBackend::create(worker::HttpOptions{
        .url = *url, .resolve = {}, .ca_bundle = {}, .policy = policy, .on_fetch_error = {},
        .credentials = std::move(credentials), .allowed_origins = std::move(allowed)});
    REQUIRE_MESSAGE(created, created.error().message());
    return std::move(*created);
}

std::string origin(const HttpTestServer& s) { return fmt::format("http://127.0.0.1:{}", s.port()); }

using testing::read_all;

}  // namespace

TEST_CASE("origins: parsed from config and from URLs, compared by scheme, host (any case) and port") {
    auto a = parse_blob_origin("http://Auth.test:5001");
    REQUIRE(a);
    CHECK(a->host == "Auth.test");
    CHECK(a->port == 5001);
    CHECK(origin_text(*a) == "http://Auth.test:5001");
    auto slash = parse_blob_origin("https://store.test/");
    REQUIRE(slash);
    CHECK(slash->port == 443);
    CHECK_FALSE(parse_blob_origin("http://a.test/token"));
    CHECK_FALSE(parse_blob_origin("a.test:80"));

    auto of = origin_of("http://auth.test:5001/token?service=x&scope=repository:a:pull");
    REQUIRE(of);
    CHECK(same_origin(*of, *a));
    auto v6 = origin_of("https://[fd00::1]/b/sha256:ab?X-Amz-Signature=1");
    REQUIRE(v6);
    CHECK(v6->host == "fd00::1");
    CHECK(v6->port == 443);
    CHECK_FALSE(same_origin(*of, *origin_of("https://auth.test:5001/")));  // another scheme
    CHECK_FALSE(same_origin(*of, *origin_of("http://auth.test:5002/")));   // another port
    CHECK_FALSE(origin_of("/relative/path"));
    CHECK_FALSE(origin_of("http://user:pw@auth.test/"));
    CHECK_FALSE(origin_of("file:///etc/passwd"));
}

TEST_CASE("origin policy: the blob server and allowed_origins only, ports each once, and which answers redirect") {
    auto server = parse_blob_url("http://registry.test:5000/v2/a/blobs/");
    REQUIRE(server);
    auto policy = worker::OriginPolicy::from_lines(*server, "http://auth.test:5001\nhttps://store.test\n\n");
    REQUIRE_MESSAGE(policy, policy.error().message());
    CHECK(policy->check("http://registry.test:5000/v2/token", "its token service"));
    CHECK(policy->check("http://AUTH.test:5001/token?x=1", "its token service"));
    CHECK(policy->check("https://store.test/blobs/x?sig=1", "its redirect to"));
    auto refused = policy->check("http://store.test/blobs/x", "its redirect to");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message() ==
          "its redirect to http://store.test/blobs/x is on http://store.test:80, which is neither blobs.url's origin "
          "http://registry.test:5000 nor in blobs.allowed_origins");
    CHECK_FALSE(policy->check("ftp://store.test/x", "its redirect to"));
    // A [[volume]]'s store is named as such.
    auto volume = worker::OriginPolicy::from_lines(*server, "", "volume \"img_a\"");
    REQUIRE(volume);
    auto elsewhere = volume->check("http://store.test/blobs/x", "its redirect to");
    REQUIRE_FALSE(elsewhere);
    CHECK(elsewhere.error().message() ==
          "its redirect to http://store.test/blobs/x is on http://store.test:80, which is neither volume \"img_a\" "
          "url's origin http://registry.test:5000 nor in volume \"img_a\" allowed_origins");
    // A presigned URL's signature is in its query: never in a message.
    auto presigned = policy->check("https://other.test/b?X-Amz-Signature=s3cr3t", "its redirect to");
    REQUIRE_FALSE(presigned);
    CHECK(presigned.error().message().find("s3cr3t") == std::string::npos);
    CHECK(presigned.error().message().find("its redirect to https://other.test/b is on") == 0);
    CHECK(policy->is_server("http://registry.test:5000/v2/a/blobs/sha256:1"));
    CHECK_FALSE(policy->is_server("http://auth.test:5001/token"));
    CHECK(policy->ports() == std::vector<std::uint16_t>{5000, 5001, 443});
    auto same_port = worker::OriginPolicy::from_lines(*server, "http://auth.test:5000");
    REQUIRE(same_port);
    CHECK(same_port->ports() == std::vector<std::uint16_t>{5000});
    CHECK_FALSE(worker::OriginPolicy::from_lines(*server, "http://a.test/path"));

    for (long status : {301L, 302L, 303L, 307L, 308L}) CHECK(worker::is_redirect(status));
    for (long status : {200L, 206L, 304L, 300L, 401L}) CHECK_FALSE(worker::is_redirect(status));
}

TEST_CASE("redirect cache: a target is kept for its time, then forgotten, and forget() drops it at once") {
    using Clock = worker::RedirectCache::Clock;
    worker::RedirectCache cache(std::chrono::seconds(60));
    const auto t0 = Clock::now();
    CHECK(cache.target(t0).empty());
    cache.remember("http://store.test/x?sig=1", t0);
    CHECK(cache.target(t0 + std::chrono::seconds(59)) == "http://store.test/x?sig=1");
    CHECK(cache.target(t0 + std::chrono::seconds(60)).empty());
    cache.forget();
    CHECK(cache.target(t0).empty());
}

TEST_CASE("blob host: every host a worker may contact is resolved, one CURLOPT_RESOLVE line each") {
    auto url = parse_blob_url("http://127.0.0.1:5000/v2/a/blobs/");
    REQUIRE(url);
    auto lines = supervisor::resolve_blob_hosts(*url, {"http://127.0.0.2:5001", "https://127.0.0.1:5000",
                                                       "http://localhost:8082"});
    REQUIRE_MESSAGE(lines, lines.error().message());
    // https on the registry's own host and port connects to the same address: no line.
    CHECK(lines->starts_with("127.0.0.1:5000:127.0.0.1\n127.0.0.2:5001:127.0.0.2\nlocalhost:8082:"));
    CHECK(std::count(lines->begin(), lines->end(), '\n') == 2);
    auto bad = supervisor::resolve_blob_hosts(*url, {"http://no-such-host.invalid"});
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message().find("resolving no-such-host.invalid (from blobs.allowed_origins)") == 0);
}

TEST_CASE("auth: a token service on another origin in allowed_origins gives the token, the registry gets it, the "
          "token service gets the credentials") {
    HttpTestServer registry, auth;
    REQUIRE((registry.ok() && auth.ok()));
    const std::string data = pattern(50000);
    registry.put("sha256:x", data);
    registry.require_bearer("jwt-1");
    registry.set_realm(origin(auth) + "/token");
    auth.issue_tokens("jwt-1", 300, "puller:pw");
    auto backend = backend_for(registry, origin(auth), "puller:pw");
    auto blob = backend->open("sha256:x");
    REQUIRE_MESSAGE(blob, blob.error().message());
    CHECK(read_all(**blob, 16384) == data);
    CHECK(auth.token_requests() == 1);
    CHECK(auth.last_token_request() == "/token?service=test-registry&scope=repository%3Acfs%2Fimages%3Apull");
    CHECK(registry.token_requests() == 0);
    CHECK(registry.unauthorized() == 1);  // the first HEAD only
    CHECK(backend->connect_ports() == std::vector<std::uint16_t>{registry.port(), auth.port()});
}

TEST_CASE("auth: a token is renewed before its expires_in runs out, without a 401 from the registry") {
    HttpTestServer registry, auth;
    REQUIRE((registry.ok() && auth.ok()));
    registry.put("b", pattern(9000));
    registry.require_bearer("short-lived");
    registry.set_realm(origin(auth) + "/token");
    auth.issue_tokens("short-lived", 2, {});  // renewed after 1 s
    auto backend = backend_for(registry, origin(auth));
    auto blob = backend->open("b");
    REQUIRE_MESSAGE(blob, blob.error().message());
    std::vector<std::byte> buf(4096);
    REQUIRE((*blob)->read_at(buf, 0));
    CHECK(auth.token_requests() == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    auto later = (*blob)->read_at(buf, 4096);
    REQUIRE_MESSAGE(later, later.error().message());
    CHECK(auth.token_requests() == 2);
    CHECK(registry.unauthorized() == 1);  // still only the first challenge
    CHECK(backend->fetch_errors() == 0);
}

TEST_CASE("auth: a token the registry refuses is EACCES at once, naming the URL, the token service and the status, "
          "and counted") {
    HttpTestServer registry, auth;
    REQUIRE((registry.ok() && auth.ok()));
    registry.put("b", pattern(100));
    registry.require_bearer("the-right-one");
    registry.set_realm(origin(auth) + "/token");
    auth.issue_tokens("forged", 300);
    auto backend = backend_for(registry, origin(auth));
    const auto t0 = std::chrono::steady_clock::now();
    auto blob = backend->open("b");
    REQUIRE_FALSE(blob);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
    CHECK(blob.error().errnum == EACCES);
    const std::string m = blob.error().message();
    INFO(m);
    CHECK(m.find(fmt::format("HEAD {}b: the server refused the token from {}/token?service=test-registry&scope=",
                             registry.url(), origin(auth))) == 0);
    CHECK(m.find("(HTTP 401)") != std::string::npos);
    CHECK(m.find("forged") == std::string::npos);  // never the token
    CHECK(backend->fetch_errors() == 1);
    CHECK(auth.token_requests() == 1);  // one new token per request, not a loop

    // Credentials the token service refuses: its URL and status, counted too.
    auth.issue_tokens("the-right-one", 300, "puller:pw");
    auto wrong = backend_for(registry, origin(auth), "puller:nope");
    auto refused = wrong->open("b");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().errnum == EACCES);
    CHECK(refused.error().message().find(fmt::format("its token service GET {}/token?service=", origin(auth))) !=
          std::string::npos);
    CHECK(refused.error().message().find("answered HTTP 401") != std::string::npos);
    CHECK(refused.error().message().find("nope") == std::string::npos);
    CHECK(wrong->fetch_errors() == 1);
}

TEST_CASE("redirects: followed to an allowed blob store with the same Range and no Authorization, and kept per blob") {
    HttpTestServer registry, store;
    REQUIRE((registry.ok() && store.ok()));
    const std::string data = pattern(40000);
    registry.require_bearer("reg-token");
    store.refuse_authorization();
    // The store serves the blob under /blobs/<name> (the test server's one prefix).
    registry.redirect_to(fmt::format("{}/blobs/", origin(store)));
    store.put("sha256:x", data);
    auto backend = backend_for(registry, origin(store));
    auto blob = backend->open("sha256:x");
    REQUIRE_MESSAGE(blob, blob.error().message());
    CHECK((*blob)->size() == data.size());
    CHECK(read_all(**blob, 8192) == data);  // 5 ranges, one redirect for them all
    CHECK(registry.redirects() == 2);       // the HEAD's and the first GET's
    CHECK(store.with_authorization() == 0);
    CHECK(backend->fetch_errors() == 0);

    // The store fails the kept target once (an expired presigned URL): the registry
    // is asked again and its new redirect is followed.
    store.fail_next(1, 403);
    std::vector<std::byte> buf(1000);
    auto again = (*blob)->read_at(buf, 100);
    REQUIRE_MESSAGE(again, again.error().message());
    CHECK(std::string(reinterpret_cast<const char*>(buf.data()), 1000) == data.substr(100, 1000));
    CHECK(registry.redirects() == 3);
    CHECK(backend->fetch_errors() == 1);
}

TEST_CASE("redirects: each attempt may follow max_redirects: a store failing for a while is retried, not called a loop") {
    HttpTestServer registry, store;
    REQUIRE((registry.ok() && store.ok()));
    const std::string data = pattern(5000);
    registry.redirect_to(fmt::format("{}/blobs/", origin(store)));
    store.put("b", data);
    auto backend = backend_for(registry, origin(store));
    auto blob = backend->open("b");
    REQUIRE_MESSAGE(blob, blob.error().message());
    // More failures than max_redirects (5): every retry asks the registry again.
    store.fail_next(7, 503);
    std::vector<std::byte> buf(1000);
    auto got = (*blob)->read_at(buf, 0);
    REQUIRE_MESSAGE(got, got.error().message());
    CHECK(std::string(reinterpret_cast<const char*>(buf.data()), 1000) == data.substr(0, 1000));
    CHECK(backend->fetch_errors() == 7);
}

TEST_CASE("fetch: a server that drips a range out, fast enough for the low-speed cut, is cut by the attempt's limit") {
    HttpTestServer server;
    REQUIRE(server.ok());
    const std::string data = pattern(5000);  // 2.5 s at the drip's rate
    server.put("b", data);
    auto policy = quick_policy();
    policy.attempt_time = std::chrono::milliseconds(300);
    policy.min_rate = 1L << 30;  // no time per byte asked for
    policy.retry_budget = std::chrono::milliseconds(500);
    auto backend = backend_for(server, {}, {}, policy);
    auto blob = backend->open("b");
    REQUIRE_MESSAGE(blob, blob.error().message());
    server.drip(true);
    std::vector<std::byte> buf(data.size());
    auto got = (*blob)->read_at(buf, 0);
    REQUIRE_FALSE(got);
    CHECK(got.error().message().find("Timeout was reached") != std::string::npos);
    CHECK(got.error().message().find("bytes=0-4999") != std::string::npos);
}

TEST_CASE("redirects: to an origin not allowed, the request fails at once naming it, and nothing is sent there") {
    HttpTestServer registry, elsewhere;
    REQUIRE((registry.ok() && elsewhere.ok()));
    registry.put("b", "data");
    elsewhere.put("b", "data");
    registry.redirect_to(fmt::format("{}/blobs/", origin(elsewhere)));
    auto backend = backend_for(registry, {});
    auto blob = backend->open("b");
    REQUIRE_FALSE(blob);
    CHECK(blob.error().errnum == EACCES);
    CHECK(blob.error().message() ==
          fmt::format("HEAD {0}b: its redirect to {1}/blobs/b is on {1}, which is neither blobs.url's origin {2} nor "
                      "in blobs.allowed_origins (HTTP 307): Permission denied",
                      registry.url(), origin(elsewhere), origin(registry)));
    CHECK(elsewhere.requests() == 0);
}

TEST_CASE("auth: a token service that is down when the token is due for renewal: the old token is used meanwhile") {
    auto registry = std::make_unique<HttpTestServer>();
    auto auth = std::make_unique<HttpTestServer>();
    REQUIRE((registry->ok() && auth->ok()));
    registry->put("b", pattern(9000));
    registry->require_bearer("still-valid");
    registry->set_realm(origin(*auth) + "/token");
    auth->issue_tokens("still-valid", 2, {});  // renewal due after 1 s
    auto backend = backend_for(*registry, origin(*auth));
    auto blob = backend->open("b");
    REQUIRE_MESSAGE(blob, blob.error().message());
    auth.reset();  // the token service goes away
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    std::vector<std::byte> buf(4096);
    auto read = (*blob)->read_at(buf, 0);
    REQUIRE_MESSAGE(read, read.error().message());
    CHECK(*read == 4096);
    CHECK(registry->unauthorized() == 1);
    CHECK(backend->fetch_errors() == 0);
}

TEST_CASE("redirects: Basic credentials are not sent along a redirect to another origin either") {
    HttpTestServer registry, store;
    REQUIRE((registry.ok() && store.ok()));
    registry.require_basic("reader:pw");
    registry.redirect_to(fmt::format("{}/blobs/", origin(store)));
    store.refuse_authorization();
    store.put("b", pattern(3000));
    auto backend = backend_for(registry, origin(store), "reader:pw");
    auto blob = backend->open("b");
    REQUIRE_MESSAGE(blob, blob.error().message());
    CHECK(read_all(**blob, 1024) == pattern(3000));
    CHECK(store.with_authorization() == 0);
    CHECK(registry.with_authorization() >= 2);  // the HEAD and the GET after the challenge
}
