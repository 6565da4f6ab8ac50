// The remote blob backend (worker/http_backend.h) against a real HTTP server on
// loopback (http_test_server.h): sizes, ranges, connection reuse, retries with a
// bounded budget, and errors that name URL, range and status.
#include "tests/unit/blob_reads.h"
#include "worker/http_backend.h"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "supervisor/blob_credentials.h"
#include "supervisor/blob_host.h"
#include "tests/unit/http_test_server.h"
#include "worker/layered_backend.h"
#include "worker/registry_auth.h"

using namespace cfs;
using cfs::testing::HttpTestServer;

namespace {

worker::HttpOptions options_for(const HttpTestServer& server, worker::FetchPolicy policy = {}) {
    auto url = parse_blob_url(server.url());
    REQUIRE(url);
    // Pinned as the worker pins what the supervisor resolved.
    return worker::HttpOptions{.url = *url, .resolve = url->host_port() + ":127.0.0.1", .ca_bundle = {},
                               .policy = policy, .on_fetch_error = {}, .credentials = {},
                               .allowed_origins = {}};
}

worker::FetchPolicy quick_policy(int budget_ms) {
    worker::FetchPolicy p;
    p.connect_timeout = std::chrono::milliseconds(500);
    p.retry_budget = std::chrono::milliseconds(budget_ms);
    p.first_backoff = std::chrono::milliseconds(10);
    p.max_backoff = std::chrono::milliseconds(100);
    return p;
}

using testing::pattern;
using testing::read_all;

}  // namespace

TEST_CASE("http backend: size from HEAD, ranges from 206 answers, one connection for all of it") {
    HttpTestServer server;
    REQUIRE(server.ok());
    const std::string data = pattern(3 * 65536 + 1234);
    server.put("img_a", data);
    auto backend = worker::HttpBackend::create(options_for(server));
    REQUIRE(backend);
    auto blob = (*backend)->open("img_a");
    REQUIRE_MESSAGE(blob, blob.error().message());
    CHECK((*blob)->size() == data.size());
    CHECK(read_all(**blob, 65536) == data);
    // A read past the end gives nothing; one across the end is cut there.
    std::vector<std::byte> buf(4096);
    auto past = (*blob)->read_at(buf, data.size() + 10);
    REQUIRE(past);
    CHECK(*past == 0);
    auto across = (*blob)->read_at(buf, data.size() - 100);
    REQUIRE(across);
    CHECK(*across == 100);
    CHECK(server.connections() == 1);
    CHECK(server.requests() == 1 + 4 + 1);
    CHECK((*backend)->fetch_errors() == 0);
}

TEST_CASE("http backend: a blob opened with its size known sends no HEAD; a missing one fails its first read") {
    HttpTestServer server;
    REQUIRE(server.ok());
    const std::string data = pattern(2 * 65536 + 77);
    server.put("img_a", data);
    auto backend = worker::HttpBackend::create(options_for(server, quick_policy(5000)));
    REQUIRE(backend);
    // Not opened ahead of need by a spare: that would be a request per object.
    CHECK((*backend)->open_ahead("img_a", data.size()) == nullptr);
    auto blob = (*backend)->open_with_size("img_a", data.size());
    REQUIRE_MESSAGE(blob, blob.error().message());
    CHECK(server.requests() == 0);
    CHECK((*blob)->size() == data.size());
    CHECK(read_all(**blob, 65536) == data);
    CHECK(server.requests() == 3);  // GETs only

    auto missing = (*backend)->open_with_size("missing", 4096);
    REQUIRE_MESSAGE(missing, missing.error().message());
    std::vector<std::byte> buf(4096);
    auto got = (*missing)->read_at(buf, 0);
    REQUIRE_FALSE(got);
    CHECK(got.error().errnum == ENOENT);
    const std::string m = got.error().message();
    CHECK(m.find(server.url() + "missing") != std::string::npos);
    CHECK(m.find("HTTP 404") != std::string::npos);
}

TEST_CASE("http backend: a blob the server does not have is ENOENT at once, naming URL and status") {
    HttpTestServer server;
    REQUIRE(server.ok());
    auto backend = worker::HttpBackend::create(options_for(server, quick_policy(5000)));
    REQUIRE(backend);
    const auto t0 = std::chrono::steady_clock::now();
    auto blob = (*backend)->open("missing");
    REQUIRE_FALSE(blob);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));  // not retried
    CHECK(blob.error().errnum == ENOENT);
    const std::string m = blob.error().message();
    CHECK(m.find("HEAD " + server.url() + "missing") != std::string::npos);
    CHECK(m.find("HTTP 404") != std::string::npos);
    CHECK(server.requests() == 1);
}

TEST_CASE("http backend: 503s and dropped connections are retried, and counted") {
    HttpTestServer server;
    REQUIRE(server.ok());
    const std::string data = pattern(10000);
    server.put("b", data);
    unsigned counted = 0;
    auto options = options_for(server, quick_policy(5000));
    options.on_fetch_error = [&counted] { ++counted; };
    auto backend = worker::HttpBackend::create(options);
    REQUIRE(backend);
    server.fail_next(2, 503);
    auto blob = (*backend)->open("b");
    REQUIRE_MESSAGE(blob, blob.error().message());
    CHECK((*backend)->fetch_errors() == 2);
    // curl itself retries a request once on a kept-alive connection that turns out
    // dead, so the first drop may not be seen as an error.
    server.fail_next(2, 0);
    CHECK(read_all(**blob, 4096) == data);
    CHECK((*backend)->fetch_errors() >= 3);
    CHECK(counted == (*backend)->fetch_errors());
}

TEST_CASE("http backend: a server that keeps failing is given up on within the retry budget, with a clear error") {
    HttpTestServer server;
    REQUIRE(server.ok());
    server.put("b", pattern(8192));
    auto backend = worker::HttpBackend::create(options_for(server, quick_policy(600)));
    REQUIRE(backend);
    auto blob = (*backend)->open("b");
    REQUIRE(blob);
    server.fail_next(1000, 503);
    std::vector<std::byte> buf(4096);
    const auto t0 = std::chrono::steady_clock::now();
    auto got = (*blob)->read_at(buf, 4096);
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(got);
    CHECK(took < std::chrono::seconds(3));
    CHECK(got.error().errnum == EIO);
    const std::string m = got.error().message();
    INFO(m);
    CHECK(m.find("GET " + server.url() + "b bytes=4096-8191") != std::string::npos);
    CHECK(m.find("HTTP 503") != std::string::npos);
    CHECK(m.find("gave up after") != std::string::npos);
    CHECK((*backend)->fetch_errors() >= 2);
}

TEST_CASE("http backend: a server that comes back within the budget is reconnected to") {
    std::uint16_t port = 0;
    auto server = std::make_unique<HttpTestServer>();
    REQUIRE(server->ok());
    port = server->port();
    const std::string data = pattern(20000);
    server->put("b", data);
    auto backend = worker::HttpBackend::create(options_for(*server, quick_policy(10000)));
    REQUIRE(backend);
    auto blob = (*backend)->open("b");
    REQUIRE(blob);
    server.reset();  // down: connections refused
    std::thread restart([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
        server = std::make_unique<HttpTestServer>(port);
        server->put("b", data);
    });
    std::vector<std::byte> buf(8192);
    auto got = (*blob)->read_at(buf, 8192);
    restart.join();
    REQUIRE_MESSAGE(got, got.error().message());
    CHECK(*got == 8192);
    CHECK(std::string(reinterpret_cast<const char*>(buf.data()), 8192) == data.substr(8192, 8192));
    CHECK((*backend)->fetch_errors() >= 1);
}

TEST_CASE("http backend: a server that ignores Range, or a blob that changed size, is an error, not data") {
    HttpTestServer server;
    REQUIRE(server.ok());
    server.put("b", pattern(8192));
    auto backend = worker::HttpBackend::create(options_for(server, quick_policy(2000)));
    REQUIRE(backend);
    auto blob = (*backend)->open("b");
    REQUIRE(blob);
    std::vector<std::byte> buf(4096);
    server.ignore_ranges(true);
    auto ignored = (*blob)->read_at(buf, 0);
    REQUIRE_FALSE(ignored);
    CHECK(ignored.error().message().find("ignored the Range header") != std::string::npos);
    server.ignore_ranges(false);
    server.put("b", pattern(9000));
    auto changed = (*blob)->read_at(buf, 0);
    REQUIRE_FALSE(changed);
    CHECK(changed.error().message().find("the blob is now 9000 bytes, not the 8192") != std::string::npos);
    // A Content-Range whose last byte is not the one asked for is no answer to it
    // either (the test server also ends the field with a space, which is allowed).
    server.put("b", pattern(8192));
    server.misreport_range_end(true);
    auto misreported = (*blob)->read_at(buf, 0);
    REQUIRE_FALSE(misreported);
    CHECK(misreported.error().message().find("Content-Range does not match the range asked for") != std::string::npos);
    server.misreport_range_end(false);
    auto fine = (*blob)->read_at(buf, 0);
    REQUIRE_MESSAGE(fine, fine.error().message());
}

TEST_CASE("http backend: nothing listening gives a connection error naming the URL") {
    std::uint16_t port;
    {
        HttpTestServer gone;
        REQUIRE(gone.ok());
        port = gone.port();
    }
    auto url = parse_blob_url(fmt::format("http://127.0.0.1:{}/blobs/", port));
    REQUIRE(url);
    auto backend = worker::HttpBackend::create(
        worker::HttpOptions{.url = *url, .resolve = {}, .ca_bundle = {}, .policy = quick_policy(300), .on_fetch_error = {},
                            .credentials = {}, .allowed_origins = {}});
    REQUIRE(backend);
    auto blob = (*backend)->open("x");
    REQUIRE_FALSE(blob);
    CHECK(blob.error().errnum == EIO);
    const std::string m = blob.error().message();
    INFO(m);
    CHECK(m.find(fmt::format("HEAD http://127.0.0.1:{}/blobs/x", port)) != std::string::npos);
    CHECK(m.find("connect") != std::string::npos);
    CHECK(m.find("no HTTP status") != std::string::npos);
}

namespace {

struct FakeBackend final : worker::BlobBackend {
    int errnum;
    unsigned opens = 0;
    std::vector<std::uint64_t> sizes;  // open_with_size's
    explicit FakeBackend(int e) : errnum(e) {}
    Result<std::unique_ptr<worker::BlobSource>> open(std::string_view) override {
        ++opens;
        return sys_error(errnum, "fake");
    }
    Result<std::unique_ptr<worker::BlobSource>> open_with_size(std::string_view name, std::uint64_t size) override {
        sizes.push_back(size);
        return open(name);
    }
    std::unique_ptr<worker::BlobSource> open_ahead(std::string_view, std::uint64_t size) override {
        ahead.push_back(size);
        return nullptr;
    }
    std::vector<std::uint64_t> ahead;  // open_ahead's
};

}  // namespace

TEST_CASE("layered backend: only a blob missing locally (ENOENT) is fetched remotely") {
    FakeBackend missing(ENOENT), unreadable(EACCES), remote(EIO);
    worker::LayeredBackend a(missing, remote);
    auto ra = a.open("x");
    REQUIRE_FALSE(ra);
    CHECK(ra.error().errnum == EIO);
    CHECK(remote.opens == 1);
    worker::LayeredBackend b(unreadable, remote);
    auto rb = b.open("x");
    REQUIRE_FALSE(rb);
    CHECK(rb.error().errnum == EACCES);
    CHECK(remote.opens == 1);
    // A known size goes to both stores, by the same rule.
    auto rc = a.open_with_size("x", 8192);
    REQUIRE_FALSE(rc);
    CHECK(rc.error().errnum == EIO);
    CHECK(missing.sizes == std::vector<std::uint64_t>{8192});
    CHECK(remote.sizes == std::vector<std::uint64_t>{8192});
    auto rd = b.open_with_size("x", 8192);
    REQUIRE_FALSE(rd);
    CHECK(rd.error().errnum == EACCES);
    CHECK(remote.sizes.size() == 1);
    // Opened ahead of need (a spare): the local store only, never the remote one.
    CHECK(a.open_ahead("x", 8192) == nullptr);
    CHECK(missing.ahead == std::vector<std::uint64_t>{8192});
    CHECK(remote.ahead.empty());
    CHECK(remote.sizes.size() == 1);
}

TEST_CASE("blob url: what is accepted and how it is split") {
    auto u = parse_blob_url("http://registry.test:8080/v/blobs/");
    REQUIRE(u);
    CHECK(u->scheme == "http");
    CHECK(u->host == "registry.test");
    CHECK(u->port == 8080);
    CHECK(u->path == "/v/blobs/");
    CHECK(u->host_port() == "registry.test:8080");
    auto s = parse_blob_url("https://[fd00::1]/");
    REQUIRE(s);
    CHECK(s->port == 443);
    CHECK(s->host_port() == "[fd00::1]:443");
    for (const char* bad : {"ftp://h/", "http://h", "http://h/x", "http://u:p@h/", "http://h:0/", "http://h:70000/",
                            "http://h/a?b/", "http://h/a b/", "http://[fd00::1/", "http://h_x/", "http://:80/"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_blob_url(bad));
    }
}

TEST_CASE("blob host: the supervisor resolves blobs.url's host into a CURLOPT_RESOLVE entry, or names what failed") {
    auto literal = parse_blob_url("http://127.0.0.1:8080/b/");
    REQUIRE(literal);
    auto entry = supervisor::resolve_blob_host(*literal);
    REQUIRE_MESSAGE(entry, entry.error().message());
    CHECK(*entry == "127.0.0.1:8080:127.0.0.1");
    auto v6 = parse_blob_url("https://[::1]/b/");
    REQUIRE(v6);
    auto entry6 = supervisor::resolve_blob_host(*v6);
    REQUIRE_MESSAGE(entry6, entry6.error().message());
    CHECK(*entry6 == "[::1]:443:[::1]");
    // From /etc/hosts, as NSS has it here; at least the IPv4 loopback.
    auto named = parse_blob_url("http://localhost:81/b/");
    REQUIRE(named);
    auto entry_named = supervisor::resolve_blob_host(*named);
    REQUIRE_MESSAGE(entry_named, entry_named.error().message());
    CHECK(entry_named->starts_with("localhost:81:"));
    CHECK(entry_named->find("127.0.0.1") != std::string::npos);
    // .invalid never resolves (RFC 6761).
    auto bad = parse_blob_url("http://no-such-host.invalid/b/");
    REQUIRE(bad);
    auto failed = supervisor::resolve_blob_host(*bad);
    REQUIRE_FALSE(failed);
    CHECK(failed.error().message().find("resolving no-such-host.invalid (the host of blobs.url): ") == 0);
}

// ---- Authentication (worker/registry_auth.h) -------------------------------------

TEST_CASE("auth: WWW-Authenticate challenges and token answers are parsed, bad ones refused") {
    auto b = worker::parse_challenge(
        R"(Bearer realm="https://auth.test/token",service="registry.test",scope="repository:a/b:pull")");
    REQUIRE(b);
    CHECK(b->scheme == "bearer");
    CHECK(b->params.at("realm") == "https://auth.test/token");
    CHECK(b->params.at("service") == "registry.test");
    CHECK(b->params.at("scope") == "repository:a/b:pull");
    auto basic = worker::parse_challenge(R"(Basic realm="a \"quoted\" realm", charset=UTF-8)");
    REQUIRE(basic);
    CHECK(basic->scheme == "basic");
    CHECK(basic->params.at("realm") == R"(a "quoted" realm)");
    CHECK(basic->params.at("charset") == "UTF-8");
    CHECK_FALSE(worker::parse_challenge(""));
    CHECK_FALSE(worker::parse_challenge(R"(Bearer realm="unterminated)"));

    auto t = worker::token_from_json(R"({"token":"abc.def","expires_in":120,"issued_at":"2026-11-25T20:00:00Z"})");
    REQUIRE(t);
    CHECK(t->token == "abc.def");
    CHECK(t->expires_in == std::chrono::seconds(120));
    auto access = worker::token_from_json(R"({"access_token":"xyz"})");
    REQUIRE(access);
    CHECK(access->token == "xyz");
    CHECK(access->expires_in == std::chrono::seconds(60));  // the token spec's default
    for (const char* bad : {R"({"token":"a","expires_in":0})", R"({"token":"a","expires_in":-5})",
                            R"({"token":"a","expires_in":"60"})", R"({"token":"a","expires_in":1.5})",
                            R"({"token":"a","expires_in":99999999999})"}) {
        INFO(bad);
        auto refused = worker::token_from_json(bad);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().message().find("expires_in") != std::string::npos);
    }
    // Renewed ahead of expiry by a fifth of the lifetime, that fifth kept within 1..30 s.
    CHECK(worker::token_refresh_after(std::chrono::seconds(60)) == std::chrono::seconds(48));
    CHECK(worker::token_refresh_after(std::chrono::seconds(300)) == std::chrono::seconds(270));
    CHECK(worker::token_refresh_after(std::chrono::seconds(3600)) == std::chrono::seconds(3570));
    CHECK(worker::token_refresh_after(std::chrono::seconds(3)) == std::chrono::seconds(2));
    CHECK(worker::token_refresh_after(std::chrono::seconds(1)) == std::chrono::seconds(0));

    // What Docker's distribution answers for an expired token, after the challenge.
    auto expired = worker::parse_challenge(
        R"(Bearer realm="http://127.0.0.2:5001/token",service="cfs-registry",scope="repository:cfs/images:pull",error="invalid_token")");
    REQUIRE(expired);
    CHECK(expired->params.at("realm") == "http://127.0.0.2:5001/token");
    CHECK(expired->params.at("error") == "invalid_token");
    CHECK_FALSE(worker::token_from_json("not json"));
    CHECK_FALSE(worker::token_from_json(R"({"token":""})"));
    CHECK_FALSE(worker::token_from_json(R"(["token"])"));
    CHECK_FALSE(worker::token_from_json("{\"token\":\"a\\r\\nX-Injected: 1\"}"));
}

TEST_CASE("auth: every challenge of a WWW-Authenticate list is parsed, and Bearer is chosen over Basic") {
    const auto all = worker::parse_challenges(
        R"(Basic realm="a, b", Bearer realm="https://auth.test/token",service="r", Negotiate)");
    REQUIRE(all.size() == 3);
    CHECK(all[0].scheme == "basic");
    CHECK(all[0].params.at("realm") == "a, b");
    CHECK(all[1].scheme == "bearer");
    CHECK(all[1].params.at("service") == "r");
    CHECK(all[2].scheme == "negotiate");
    CHECK(all[2].params.empty());
    const worker::AuthChallenge* chosen = worker::choose_challenge(all);
    REQUIRE(chosen != nullptr);
    CHECK(chosen->scheme == "bearer");
    const auto basic_only = worker::parse_challenges(R"(Negotiate, Basic realm="x")");
    REQUIRE(basic_only.size() == 2);
    CHECK(worker::choose_challenge(basic_only)->scheme == "basic");
    const auto unknown = worker::parse_challenges("Negotiate");
    CHECK(worker::choose_challenge(unknown)->scheme == "negotiate");  // refused by name
    CHECK(worker::choose_challenge({}) == nullptr);
    CHECK(worker::parse_challenges(R"(Bearer realm="unterminated)").empty());
}

TEST_CASE("auth: a Bearer challenge on the second WWW-Authenticate line is answered") {
    HttpTestServer server;
    REQUIRE(server.ok());
    const std::string data = pattern(5000);
    server.put("sha256:y", data);
    server.require_bearer("token-1");
    server.offer_first(R"(Basic realm="legacy")");
    // No credentials: answering the first line (Basic) would fail.
    auto backend = worker::HttpBackend::create(options_for(server, quick_policy(5000)));
    REQUIRE(backend);
    auto blob = (*backend)->open("sha256:y");
    REQUIRE_MESSAGE(blob, blob.error().message());
    CHECK(server.token_requests() == 1);
    CHECK(read_all(**blob, 4096) == data);
}

TEST_CASE("auth: Bearer whose token service is not on an allowed origin falls back to the Basic also offered") {
    HttpTestServer server;
    REQUIRE(server.ok());
    const std::string data = pattern(5000);
    server.put("b", data);
    server.require_basic("reader:s3cret");
    server.offer_first(R"(Bearer realm="http://127.0.0.9:9/token",service="elsewhere")");
    auto options = options_for(server, quick_policy(5000));
    options.credentials = "reader:s3cret";
    auto backend = worker::HttpBackend::create(options);
    REQUIRE(backend);
    auto blob = (*backend)->open("b");
    REQUIRE_MESSAGE(blob, blob.error().message());
    CHECK(read_all(**blob, 4096) == data);
    CHECK(server.token_requests() == 0);

    // Without credentials there is nothing to fall back to: the Bearer refusal stands.
    auto anonymous = worker::HttpBackend::create(options_for(server, quick_policy(5000)));
    REQUIRE(anonymous);
    auto refused = (*anonymous)->open("b");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message().find("token service") != std::string::npos);
}

TEST_CASE("auth: Basic credentials are sent when the server asks, and a wrong password is EACCES at once") {
    HttpTestServer server;
    REQUIRE(server.ok());
    server.put("b", pattern(5000));
    server.require_basic("reader:s3cret");
    auto options = options_for(server, quick_policy(5000));
    options.credentials = "reader:s3cret";
    auto backend = worker::HttpBackend::create(options);
    REQUIRE(backend);
    auto blob = (*backend)->open("b");
    REQUIRE_MESSAGE(blob, blob.error().message());
    CHECK(read_all(**blob, 4096) == pattern(5000));

    options.credentials = "reader:wrong";
    auto wrong = worker::HttpBackend::create(options);
    REQUIRE(wrong);
    const auto t0 = std::chrono::steady_clock::now();
    auto refused = (*wrong)->open("b");
    REQUIRE_FALSE(refused);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
    CHECK(refused.error().errnum == EACCES);
    CHECK(refused.error().message().find("wrong") == std::string::npos);  // never the password

    options.credentials = {};
    auto none = worker::HttpBackend::create(options);
    REQUIRE(none);
    auto anonymous = (*none)->open("b");
    REQUIRE_FALSE(anonymous);
    CHECK(anonymous.error().message().find("it asks for Basic credentials, and blobs.credentials gives none") !=
          std::string::npos);
}

TEST_CASE("auth: a Bearer challenge gets a token from the realm (anonymously or with credentials), and a new one "
          "when it is refused") {
    HttpTestServer server;
    REQUIRE(server.ok());
    const std::string data = pattern(70000);
    server.put("sha256:x", data);
    server.require_bearer("token-1");
    auto options = options_for(server, quick_policy(5000));
    auto backend = worker::HttpBackend::create(options);
    REQUIRE(backend);
    auto blob = (*backend)->open("sha256:x");
    REQUIRE_MESSAGE(blob, blob.error().message());
    CHECK(server.token_requests() == 1);
    CHECK(server.last_token_request() == "/token?service=test-registry&scope=repository%3Acfs%2Fimages%3Apull");
    CHECK(read_all(**blob, 16384) == data);
    CHECK(server.token_requests() == 1);  // the token is kept
    // The token expires: the next request is refused once, a new token is fetched.
    server.require_bearer("token-2");
    std::vector<std::byte> buf(4096);
    auto again = (*blob)->read_at(buf, 0);
    REQUIRE_MESSAGE(again, again.error().message());
    CHECK(server.token_requests() == 2);
    CHECK((*backend)->fetch_errors() == 0);

    // A token service that wants credentials.
    server.require_bearer("token-3", "puller:pw");
    options.credentials = "puller:pw";
    auto with = worker::HttpBackend::create(options);
    REQUIRE(with);
    auto ok = (*with)->open("sha256:x");
    REQUIRE_MESSAGE(ok, ok.error().message());
    options.credentials = "puller:bad";
    auto bad = worker::HttpBackend::create(options);
    REQUIRE(bad);
    auto refused = (*bad)->open("sha256:x");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().errnum == EACCES);
    const std::string m = refused.error().message();
    INFO(m);
    CHECK(m.find("answered HTTP 401") != std::string::npos);
    CHECK(m.find("puller:bad") == std::string::npos);
}

TEST_CASE("auth: a token realm on an origin that is not blobs.url's nor in blobs.allowed_origins is refused, unasked") {
    HttpTestServer server, other;
    REQUIRE((server.ok() && other.ok()));
    server.put("b", "x");
    server.require_bearer("t");
    // Point the backend at `other`'s port through the URL, at `server`'s through the
    // pin: the realm `server` names is then not the backend's origin.
    auto url = parse_blob_url(fmt::format("http://registry.test:{}/blobs/", server.port()));
    REQUIRE(url);
    auto backend = worker::HttpBackend::create(
        worker::HttpOptions{.url = *url, .resolve = url->host_port() + ":127.0.0.1", .ca_bundle = {},
                            .policy = quick_policy(2000), .on_fetch_error = {}, .credentials = {},
                            .allowed_origins = {}});
    REQUIRE(backend);
    auto blob = (*backend)->open("b");
    REQUIRE_FALSE(blob);
    CHECK(blob.error().errnum == EACCES);
    CHECK(blob.error().message().find(fmt::format("its token service http://127.0.0.1:{0}/token is on "
                                                  "http://127.0.0.1:{0}, which is neither blobs.url's origin "
                                                  "http://registry.test:{0} nor in blobs.allowed_origins",
                                                  server.port())) != std::string::npos);
    CHECK(server.token_requests() == 0);
}

// ---- [blobs] credentials, read by the supervisor ----------------------------------

namespace {

struct CredentialsFile {
    std::string path;
    explicit CredentialsFile(const std::string& text, mode_t mode = 0600) {
        char templ[] = "/tmp/cfs-credentials-test.XXXXXX";
        const int fd = ::mkstemp(templ);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
        ::fchmod(fd, mode);
        ::close(fd);
        path = templ;
    }
    ~CredentialsFile() { ::unlink(path.c_str()); }
};

}  // namespace

TEST_CASE("credentials: a root-only file with one user:password line is read; anything else is refused, never "
          "quoting it") {
    if (::geteuid() != 0) {
        MESSAGE("not root: the owner checks need root; skipped");
        return;
    }
    {
        CredentialsFile f("puller:p4ss\n");
        auto c = supervisor::read_blob_credentials(f.path);
        REQUIRE_MESSAGE(c, c.error().message());
        CHECK(*c == "puller:p4ss");
    }
    auto refused = [](const CredentialsFile& f) {
        auto c = supervisor::read_blob_credentials(f.path);
        REQUIRE_FALSE(c);
        const std::string m = c.error().message();
        CHECK(m.find(f.path) != std::string::npos);
        CHECK(m.find("p4ss") == std::string::npos);
        return m;
    };
    CHECK(refused(CredentialsFile("puller:p4ss\n", 0640)).find("may be read by group or others (mode 0640)") !=
          std::string::npos);
    CHECK(refused(CredentialsFile("puller:p4ss\n", 0604)).find("(mode 0604)") != std::string::npos);
    CHECK(refused(CredentialsFile("pullerp4ss\n")).find("expected \"user:password\"") != std::string::npos);
    CHECK(refused(CredentialsFile("puller:p4ss\nmore\n")).find("more lines or control characters") !=
          std::string::npos);
    CHECK(refused(CredentialsFile("puller:" + std::string(600, 'p') + "4ss")).find("at most 512 bytes") !=
          std::string::npos);
    {
        CredentialsFile f("puller:p4ss\n");
        REQUIRE(::chown(f.path.c_str(), 65534, 65534) == 0);
        CHECK(refused(f).find("belongs to uid 65534; it must belong to root") != std::string::npos);
    }
    auto missing = supervisor::read_blob_credentials("/nonexistent/credentials");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().errnum == ENOENT);
    // A FIFO is refused at once; blocked in open() instead, SIGALRM ends the test run.
    char dir[] = "/tmp/cfs-credentials-fifo.XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string fifo = std::string(dir) + "/credentials";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    ::alarm(5);
    auto from_fifo = supervisor::read_blob_credentials(fifo);
    ::alarm(0);
    ::unlink(fifo.c_str());
    ::rmdir(dir);
    REQUIRE_FALSE(from_fifo);
    CHECK(from_fifo.error().message().find("is not a regular file") != std::string::npos);
}
