// SHA-256 through libcrypto, loaded at run time (worker/crypto_api.h). Shared by the
// whole-blob check (worker/verifying_backend.h) and the chunk check
// (worker/chunk_verified_source.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "worker/crypto_api.h"

namespace cfs::worker {

using Sha256 = std::array<std::uint8_t, 32>;

// Lowercase hex, as digests are written in blob names and manifests.
[[nodiscard]] std::string to_hex(const Sha256& digest);
// 64 hex digits (lowercase only: names and manifests are compared as written).
[[nodiscard]] std::optional<Sha256> from_hex(std::string_view hex);

// One running hash. A Hasher that could not be set up (libcrypto missing) reports
// failure at finish(), never a digest.
class Hasher {
public:
    Hasher();
    Hasher(const Hasher&) = delete;
    Hasher& operator=(const Hasher&) = delete;
    ~Hasher() { drop(); }
    [[nodiscard]] bool ok() const { return ctx_ != nullptr; }
    void update(std::span<const std::byte> data);
    [[nodiscard]] std::optional<Sha256> finish();

private:
    void drop();
    const CryptoApi* api_ = nullptr;
    EVP_MD_CTX* ctx_ = nullptr;
};

[[nodiscard]] std::optional<Sha256> sha256_of(std::span<const std::byte> data);

}  // namespace cfs::worker
