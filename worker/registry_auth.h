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
//   fetched again when the server says 401 to it.
// The realm must be on the blob server's own scheme, host and port: a worker cannot
// resolve names and may connect to that port only (policy/README.md).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace cfs::worker {

struct AuthChallenge {
    std::string scheme;  // lower case: "basic", "bearer"
    std::map<std::string, std::string> params;  // keys lower case
};

// The first challenge of a WWW-Authenticate value; nullopt if it has none.
[[nodiscard]] std::optional<AuthChallenge> parse_challenge(std::string_view value);

// The token of a token service's JSON answer ("token", else "access_token").
[[nodiscard]] Result<std::string> token_from_json(std::string_view body);

}  // namespace cfs::worker
