// A small HTTP/1.1 server for the remote backend's tests, on 127.0.0.1 in a thread of
// the test process: HEAD and GET of named blobs, `Range: bytes=a-b` answered with 206
// and Content-Range, keep-alive, and faults on demand (answer the next N requests
// with a status, or close the connection without answering). It counts connections
// and requests, so a test can see that the client reuses its connection.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace cfs::testing {

class HttpTestServer {
public:
    // port 0: any free port.
    explicit HttpTestServer(std::uint16_t port = 0) {
        listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const int one = 1;
        ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || ::listen(listener_.get(), 16) < 0) {
            listener_.reset();
            return;
        }
        socklen_t len = sizeof a;
        ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { run(); });
    }
    ~HttpTestServer() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    [[nodiscard]] bool ok() const { return static_cast<bool>(listener_); }
    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] std::string url() const { return fmt::format("http://127.0.0.1:{}/blobs/", port_); }

    void put(const std::string& name, std::string data) {
        std::lock_guard lock(mutex_);
        blobs_["/blobs/" + name] = std::move(data);
    }
    // The next `n` requests get `status` (no body), or are dropped unanswered (0).
    void fail_next(unsigned n, int status) {
        std::lock_guard lock(mutex_);
        fail_count_ = n;
        fail_status_ = status;
    }
    // Every range answer ignores the Range header (200 and the whole blob).
    void ignore_ranges(bool on) { ignore_ranges_ = on; }
    // Range answers send their body 100 bytes every 50 ms (2 KB/s: above curl's
    // low-speed cut, far below any useful rate).
    void drip(bool on) { drip_ = on; }
    // Range answers name a last byte one past the one sent (a broken proxy).
    void misreport_range_end(bool on) { misreport_range_end_ = on; }
    // Blob requests need "Authorization: Basic base64(credentials)"; 401 otherwise.
    void require_basic(std::string credentials) {
        std::lock_guard lock(mutex_);
        basic_ = "Basic " + base64(credentials);
    }
    // Blob requests need "Authorization: Bearer <token>"; 401 with a Bearer challenge
    // whose realm is this server's /token otherwise. /token answers {"token": token},
    // to requests with Basic `credentials` when those are not empty.
    void require_bearer(std::string token, std::string credentials = {}) {
        std::lock_guard lock(mutex_);
        bearer_ = std::move(token);
        issued_ = bearer_;
        token_basic_ = credentials.empty() ? std::string() : "Basic " + base64(credentials);
    }
    // The Bearer challenge comes after a WWW-Authenticate line with this value, and the
    // Basic one before it (another scheme the server also offers).
    void offer_first(std::string challenge) {
        std::lock_guard lock(mutex_);
        other_challenge_ = std::move(challenge);
    }
    // The Bearer challenge names this realm instead of this server's /token (a token
    // service on another server).
    void set_realm(std::string realm) {
        std::lock_guard lock(mutex_);
        realm_ = std::move(realm);
    }
    // What /token hands out: `token`, living `expires_in` seconds (omitted when < 0),
    // to requests with Basic `credentials` when those are not empty.
    void issue_tokens(std::string token, int expires_in, std::string credentials = {}) {
        std::lock_guard lock(mutex_);
        issued_ = std::move(token);
        expires_in_ = expires_in;
        token_basic_ = credentials.empty() ? std::string() : "Basic " + base64(credentials);
    }
    // Blob requests (once authorised) are answered 307 with Location `base` + the
    // blob's name, as a registry sends clients to its blob store.
    void redirect_to(std::string base) {
        std::lock_guard lock(mutex_);
        redirect_base_ = std::move(base);
    }
    // Any request with an Authorization header gets 400 (a blob store behind presigned
    // URLs refuses a second authorisation, as S3 does).
    void refuse_authorization() { refuse_authorization_ = true; }
    [[nodiscard]] unsigned redirects() const { return redirects_; }
    [[nodiscard]] unsigned unauthorized() const { return unauthorized_; }
    [[nodiscard]] unsigned with_authorization() const { return with_authorization_; }
    [[nodiscard]] std::string last_token_request() {
        std::lock_guard lock(mutex_);
        return last_token_request_;
    }
    [[nodiscard]] unsigned token_requests() const { return token_requests_; }
    [[nodiscard]] unsigned connections() const { return connections_; }
    [[nodiscard]] unsigned requests() const { return requests_; }

private:
    void run() {
        while (!stop_) {
            pollfd p{listener_.get(), POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            unique_fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!c) continue;
            ++connections_;
            serve(c.get());
        }
    }

    // One connection, as long as the client keeps it and no other client is waiting
    // (one at a time: a kept-alive connection idle while another client connects is
    // closed, as servers do; curl then connects again when it needs to).
    void serve(int c) {
        std::string in;
        while (!stop_) {
            const std::size_t end = in.find("\r\n\r\n");
            if (end == std::string::npos) {
                pollfd p[2] = {{c, POLLIN, 0}, {listener_.get(), POLLIN, 0}};
                if (::poll(p, 2, 50) == 0) continue;
                if ((p[0].revents & POLLIN) == 0) {
                    if (in.empty() && (p[1].revents & POLLIN) != 0) return;
                    continue;
                }
                char buf[4096];
                const ssize_t n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) return;
                in.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            const std::string head = in.substr(0, end);
            in.erase(0, end + 4);
            ++requests_;
            if (!answer(c, head)) return;
        }
    }

    static std::string base64(std::string_view in) {
        static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::string out;
        for (std::size_t i = 0; i < in.size(); i += 3) {
            const std::size_t n = std::min<std::size_t>(3, in.size() - i);
            std::uint32_t v = 0;
            for (std::size_t k = 0; k < 3; ++k) v = (v << 8) | (k < n ? static_cast<unsigned char>(in[i + k]) : 0);
            for (std::size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=';
        }
        return out;
    }
    static std::string header_value(const std::string& head, std::string_view name) {
        const std::string key = "\r\n" + std::string(name) + ": ";
        const std::size_t at = head.find(key);
        if (at == std::string::npos) return {};
        const std::size_t start = at + key.size();
        return head.substr(start, head.find("\r\n", start) - start);
    }

    bool answer(int c, const std::string& head) {
        const bool is_head = head.starts_with("HEAD ");
        const std::size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
        const std::string path = head.substr(sp1 + 1, sp2 - sp1 - 1);
        const std::string authorization = header_value(head, "Authorization");
        std::string data;
        bool found = false;
        {
            std::lock_guard lock(mutex_);
            if (!authorization.empty()) ++with_authorization_;
            if (refuse_authorization_ && !authorization.empty())
                return send_all(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            if (path.starts_with("/token")) {
                ++token_requests_;
                last_token_request_ = path;
                if (!token_basic_.empty() && authorization != token_basic_)
                    return send_all(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
                const std::string body =
                    expires_in_ < 0 ? fmt::format("{{\"token\": \"{}\"}}", issued_)
                                    : fmt::format("{{\"token\": \"{}\", \"expires_in\": {}}}", issued_, expires_in_);
                return send_all(c, fmt::format("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                               "Content-Length: {}\r\n\r\n{}", body.size(), body));
            }
            if (!basic_.empty() && authorization != basic_) {
                ++unauthorized_;
                const std::string other =
                    other_challenge_.empty() ? std::string() : fmt::format("WWW-Authenticate: {}\r\n", other_challenge_);
                return send_all(c, fmt::format("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\n"
                                               "{}Content-Length: 0\r\n\r\n",
                                               other));
            }
            if (!bearer_.empty() && authorization != "Bearer " + bearer_) {
                ++unauthorized_;
                const std::string realm = realm_.empty() ? fmt::format("http://127.0.0.1:{}/token", port_) : realm_;
                const std::string other =
                    other_challenge_.empty() ? std::string() : fmt::format("WWW-Authenticate: {}\r\n", other_challenge_);
                return send_all(c, fmt::format("HTTP/1.1 401 Unauthorized\r\n{}WWW-Authenticate: Bearer "
                                               "realm=\"{}\",service=\"test-registry\","
                                               "scope=\"repository:cfs/images:pull\"\r\nContent-Length: 0\r\n\r\n",
                                               other, realm));
            }
            if (!redirect_base_.empty() && path.starts_with("/blobs/")) {
                ++redirects_;
                return send_all(c, fmt::format("HTTP/1.1 307 Temporary Redirect\r\nLocation: {}{}\r\n"
                                               "Content-Length: 0\r\n\r\n", redirect_base_, path.substr(7)));
            }
            if (fail_count_ > 0) {
                --fail_count_;
                if (fail_status_ == 0) return false;  // drop the connection unanswered
                return send_all(c, fmt::format("HTTP/1.1 {} Test\r\nContent-Length: 0\r\n\r\n", fail_status_));
            }
            if (auto it = blobs_.find(path); it != blobs_.end()) {
                data = it->second;
                found = true;
            }
        }
        if (!found) return send_all(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        std::uint64_t first = 0, last = 0;
        const std::size_t r = head.find("\r\nRange: bytes=");
        if (r == std::string::npos || ignore_ranges_ ||
            std::sscanf(head.c_str() + r + 15, "%lu-%lu", &first, &last) != 2) {
            return send_all(c, fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", data.size())) &&
                   (is_head || send_all(c, data));
        }
        if (first >= data.size() || last < first)
            return send_all(c, fmt::format("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\n"
                                           "Content-Length: 0\r\n\r\n", data.size()));
        last = std::min<std::uint64_t>(last, data.size() - 1);
        if (!send_all(c, fmt::format("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {}-{}/{} \r\n"
                                     "Content-Length: {}\r\n\r\n", first, last + (misreport_range_end_ ? 1 : 0),
                                     data.size(), last - first + 1)))
            return false;
        if (is_head) return true;
        std::string_view body = std::string_view(data).substr(first, last - first + 1);
        if (!drip_) return send_all(c, body);
        while (!body.empty() && !stop_) {
            const std::size_t n = std::min<std::size_t>(100, body.size());
            if (!send_all(c, body.substr(0, n))) return false;
            body.remove_prefix(n);
            ::usleep(50'000);
        }
        return body.empty();
    }

    static bool send_all(int c, std::string_view s) {
        while (!s.empty()) {
            const ssize_t n = ::send(c, s.data(), s.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            s.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    unique_fd listener_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::map<std::string, std::string> blobs_;
    unsigned fail_count_ = 0;
    int fail_status_ = 0;
    std::atomic<bool> ignore_ranges_{false};
    std::atomic<bool> drip_{false};
    std::atomic<bool> misreport_range_end_{false};
    std::string basic_, bearer_, token_basic_, last_token_request_, issued_, realm_, redirect_base_, other_challenge_;
    int expires_in_ = 300;
    std::atomic<bool> refuse_authorization_{false};
    std::atomic<unsigned> redirects_{0};
    std::atomic<unsigned> unauthorized_{0};
    std::atomic<unsigned> with_authorization_{0};
    std::atomic<unsigned> token_requests_{0};
    std::atomic<unsigned> connections_{0};
    std::atomic<unsigned> requests_{0};
};

}  // namespace cfs::testing
