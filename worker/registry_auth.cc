#include "worker/registry_auth.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace cfs::worker {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

void skip_space(std::string_view& s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
}

bool is_token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// One challenge from the front of `s`, which is left at the next one's scheme.
std::optional<AuthChallenge> parse_one(std::string_view& s) {
    skip_space(s);
    std::size_t n = 0;
    while (n < s.size() && is_token_char(s[n])) ++n;
    if (n == 0) return std::nullopt;
    AuthChallenge c;
    c.scheme = lower(s.substr(0, n));
    s.remove_prefix(n);
    // auth-params: key=value or key="quoted", separated by commas.
    for (;;) {
        skip_space(s);
        while (!s.empty() && s.front() == ',') {
            s.remove_prefix(1);
            skip_space(s);
        }
        std::size_t k = 0;
        while (k < s.size() && is_token_char(s[k])) ++k;
        if (k == 0) break;
        const std::string key = lower(s.substr(0, k));
        std::string_view rest = s.substr(k);
        skip_space(rest);
        if (rest.empty() || rest.front() != '=') break;  // the next challenge's scheme
        rest.remove_prefix(1);
        skip_space(rest);
        std::string value;
        if (!rest.empty() && rest.front() == '"') {
            rest.remove_prefix(1);
            bool closed = false;
            while (!rest.empty()) {
                const char ch = rest.front();
                rest.remove_prefix(1);
                if (ch == '\\' && !rest.empty()) {
                    value += rest.front();
                    rest.remove_prefix(1);
                } else if (ch == '"') {
                    closed = true;
                    break;
                } else {
                    value += ch;
                }
            }
            if (!closed) return std::nullopt;
        } else {
            std::size_t v = 0;
            while (v < rest.size() && is_token_char(rest[v])) ++v;
            value = std::string(rest.substr(0, v));
            rest.remove_prefix(v);
        }
        c.params[key] = std::move(value);
        s = rest;
    }
    return c;
}

}  // namespace

std::optional<AuthChallenge> parse_challenge(std::string_view value) { return parse_one(value); }

std::vector<AuthChallenge> parse_challenges(std::string_view value) {
    std::vector<AuthChallenge> all;
    // A server that sends a thousand is not offering a choice; the first few are it.
    constexpr std::size_t kMaxChallenges = 16;
    while (all.size() < kMaxChallenges) {
        auto one = parse_one(value);
        if (!one) break;
        all.push_back(std::move(*one));
    }
    return all;
}

const AuthChallenge* choose_challenge(std::span<const AuthChallenge> offered) {
    const auto is = [&](std::string_view scheme) {
        return std::find_if(offered.begin(), offered.end(), [&](const AuthChallenge& c) { return c.scheme == scheme; });
    };
    // A registry's token service is what Bearer names; Basic is the fallback.
    if (auto bearer = is("bearer"); bearer != offered.end()) return &*bearer;
    if (auto basic = is("basic"); basic != offered.end()) return &*basic;
    return offered.empty() ? nullptr : &offered.front();
}

Result<TokenGrant> token_from_json(std::string_view body) {
    const auto json = nlohmann::json::parse(body, nullptr, false);
    if (json.is_discarded() || !json.is_object()) return logic_error("the token service's answer is not a JSON object");
    TokenGrant grant;
    for (const char* key : {"token", "access_token"}) {
        const auto it = json.find(key);
        if (it == json.end() || !it->is_string() || it->get<std::string>().empty()) continue;
        grant.token = it->get<std::string>();
        break;
    }
    if (grant.token.empty()) return logic_error("the token service's answer has no \"token\" or \"access_token\"");
    // It goes into a header line: nothing but visible ASCII.
    if (!std::all_of(grant.token.begin(), grant.token.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; }))
        return logic_error("the token service's token has characters a header cannot carry");
    if (const auto it = json.find("expires_in"); it != json.end()) {
        // A year is more than any token service hands out; beyond it is a mistake.
        constexpr std::int64_t kMaxSeconds = 365LL * 24 * 3600;
        if (!it->is_number_integer() || it->get<std::int64_t>() <= 0 || it->get<std::int64_t>() > kMaxSeconds)
            return logic_error(fmt::format("the token service's expires_in is {}, not a number of seconds from 1 to {}",
                                           it->dump(), kMaxSeconds));
        grant.expires_in = std::chrono::seconds(it->get<std::int64_t>());
    }
    return grant;
}

std::chrono::seconds token_refresh_after(std::chrono::seconds expires_in) {
    const auto margin = std::clamp(expires_in / 5, std::chrono::seconds(1), std::chrono::seconds(30));
    return std::max(expires_in - margin, std::chrono::seconds(0));
}

}  // namespace cfs::worker
