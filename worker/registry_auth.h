// Authentication to a blob server (issue 7, slice 2): what a 401's WWW-Authenticate
// asks for, and the token an OCI token service answers with. Pure parsing, so it is
// tested on its own; worker/http_backend.cc does the requests.
//
// The flows (the OCI distribution spec's, as Docker's registry and others do them):
// - Basic: the request is sent again with the credentials from the supervisor
//   ([blobs] credentials).
// - Bearer realm="...",service="...",scope="...": a token is fetched from the realm
//   (GET realm?service=...&scope=..., with the credentials as Basic if there are any,
//   anonymously otherwise) and sent as "Authorization: Bearer <token>" from then on,
//   fetched again before its expires_in runs out, and once when the server says 401
//   to it.
// The realm must be on the blob server's own origin or one of [blobs]
// allowed_origins: a worker cannot resolve names and may connect to those ports only
// (policy/README.md); the supervisor resolved them at start.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace cfs::worker {

struct AuthChallenge {
    std::string scheme;  // lower case: "basic", "bearer"
    std::map<std::string, std::string> params;  // keys lower case
};

// The first challenge of a WWW-Authenticate value; nullopt if it has none.
[[nodiscard]] std::optional<AuthChallenge> parse_challenge(std::string_view value);
// Every challenge of a value (several header lines joined with ", ", as RFC 9110
// allows for a list field), up to the first that does not parse; at most 16.
[[nodiscard]] std::vector<AuthChallenge> parse_challenges(std::string_view value);
// The one to answer: Bearer if offered, else Basic, else the first (which the caller
// then refuses by name); null when there are none.
[[nodiscard]] const AuthChallenge* choose_challenge(std::span<const AuthChallenge> offered);

struct TokenGrant {
    std::string token;
    // The answer's expires_in; 60 s when it has none, as the token spec of Docker's
    // distribution says.
    std::chrono::seconds expires_in{60};
};

// The token of a token service's JSON answer ("token", else "access_token"), and how
// long it lives ("expires_in", seconds, a positive integer).
[[nodiscard]] Result<TokenGrant> token_from_json(std::string_view body);

// How long after it was received a token is fetched again, ahead of requests that
// would otherwise be refused: its lifetime less a fifth of it, that fifth between
// 1 and 30 s (a 60 s token is renewed after 48 s, a 300 s one after 270 s).
[[nodiscard]] std::chrono::seconds token_refresh_after(std::chrono::seconds expires_in);

}  // namespace cfs::worker
