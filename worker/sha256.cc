#include "worker/sha256.h"

#include <fmt/format.h>

namespace cfs::worker {

std::string to_hex(const Sha256& digest) {
    std::string out;
    out.reserve(2 * digest.size());
    for (auto b : digest) out += fmt::format("{:02x}", b);
    return out;
}

std::optional<Sha256> from_hex(std::string_view hex) {
    Sha256 out{};
    if (hex.size() != 2 * out.size()) return std::nullopt;
    for (std::size_t i = 0; i < out.size(); ++i) {
        unsigned v = 0;
        for (char c : hex.substr(2 * i, 2)) {
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
            else return std::nullopt;
        }
        out[i] = static_cast<std::uint8_t>(v);
    }
    return out;
}

Hasher::Hasher() {
    auto api = load_crypto();
    if (!api) return;
    api_ = *api;
    ctx_ = api_->md_ctx_new();
    if (ctx_ != nullptr && api_->digest_init_ex(ctx_, api_->sha256(), nullptr) != 1) drop();
}

void Hasher::update(std::span<const std::byte> data) {
    if (ctx_ != nullptr && api_->digest_update(ctx_, data.data(), data.size()) != 1) drop();
}

std::optional<Sha256> Hasher::finish() {
    Sha256 out{};
    unsigned len = 0;
    if (ctx_ == nullptr || api_->digest_final_ex(ctx_, out.data(), &len) != 1 || len != out.size())
        return std::nullopt;
    return out;
}

void Hasher::drop() {
    if (ctx_ != nullptr) api_->md_ctx_free(ctx_);
    ctx_ = nullptr;
}

std::optional<Sha256> sha256_of(std::span<const std::byte> data) {
    Hasher h;
    h.update(data);
    return h.finish();
}

}  // namespace cfs::worker
