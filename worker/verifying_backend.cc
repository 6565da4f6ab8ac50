#include "worker/verifying_backend.h"

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/log.h"
#include "worker/crypto_api.h"

namespace cfs::worker {
namespace {

constexpr std::string_view kPrefix = "sha256:";
constexpr std::size_t kChunk = std::size_t{1} << 20;

std::string hex(const Sha256& d) {
    std::string out;
    for (auto b : d) out += fmt::format("{:02x}", b);
    return out;
}

// SHA-256 through libcrypto, loaded on first use (prepare_sha256 does that before
// the sandbox); a Hasher that could not be set up reports failure at finish().
class Hasher {
public:
    Hasher() {
        auto api = load_crypto();
        if (!api) return;
        api_ = *api;
        ctx_ = api_->md_ctx_new();
        if (ctx_ != nullptr && api_->digest_init_ex(ctx_, api_->sha256(), nullptr) != 1) drop();
    }
    Hasher(const Hasher&) = delete;
    Hasher& operator=(const Hasher&) = delete;
    ~Hasher() { drop(); }
    [[nodiscard]] bool ok() const { return ctx_ != nullptr; }
    void update(std::span<const std::byte> data) {
        if (ctx_ != nullptr && api_->digest_update(ctx_, data.data(), data.size()) != 1) drop();
    }
    [[nodiscard]] std::optional<Sha256> finish() {
        Sha256 out{};
        unsigned len = 0;
        if (ctx_ == nullptr || api_->digest_final_ex(ctx_, out.data(), &len) != 1 || len != out.size())
            return std::nullopt;
        return out;
    }

private:
    void drop() {
        if (ctx_ != nullptr) api_->md_ctx_free(ctx_);
        ctx_ = nullptr;
    }
    const CryptoApi* api_ = nullptr;
    EVP_MD_CTX* ctx_ = nullptr;
};

Error mismatch(std::string_view name, const Sha256& got) {
    return sys_error(EIO, fmt::format("blob {} failed verification: its bytes hash to sha256:{}", name, hex(got)));
}

// A small blob, fetched and checked at OPEN.
class VerifiedInMemory final : public BlobSource {
public:
    explicit VerifiedInMemory(std::vector<std::byte> data) : data_(std::move(data)) {}
    std::uint64_t size() const override { return data_.size(); }
    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override {
        if (offset >= data_.size()) return std::size_t{0};
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), data_.size() - offset));
        std::copy_n(data_.begin() + static_cast<std::ptrdiff_t>(offset), n, buffer.begin());
        return n;
    }

private:
    std::vector<std::byte> data_;
};

// A large blob, checked when every byte of it was fetched.
class VerifiedWhenComplete final : public BlobSource {
public:
    VerifiedWhenComplete(std::unique_ptr<BlobSource> inner, std::string name, Sha256 expected)
        : inner_(std::move(inner)), name_(std::move(name)), expected_(expected) {}
    std::uint64_t size() const override { return inner_->size(); }

    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override {
        if (failed_) return sys_error(EIO, fmt::format("blob {} failed verification earlier; not served", name_));
        auto got = inner_->read_at(buffer, offset);
        if (!got || *got == 0 || verified_) return got;
        hash_in_order(buffer.first(*got), offset);
        note_fetched(offset, offset + *got);
        if (!complete()) return got;
        if (auto done = finish(); !done) {
            failed_ = true;
            log::error("{}; every later READ of it fails, and what was served of it before stays in the cache "
                       "until the object is dropped",
                       done.error().message());
            return std::move(done).error();
        }
        verified_ = true;
        log::info("blob {} verified: every byte fetched matches its digest", name_);
        return got;
    }

private:
    void hash_in_order(std::span<const std::byte> data, std::uint64_t offset) {
        const std::uint64_t end = offset + data.size();
        if (offset > hashed_ || end <= hashed_) return;
        hasher_.update(data.subspan(static_cast<std::size_t>(hashed_ - offset)));
        hashed_ = end;
    }
    // Fetched ranges, merged: start -> end.
    void note_fetched(std::uint64_t start, std::uint64_t end) {
        auto it = fetched_.upper_bound(start);
        if (it != fetched_.begin() && std::prev(it)->second >= start) {
            --it;
            start = it->first;
            end = std::max(end, it->second);
            it = fetched_.erase(it);
        }
        while (it != fetched_.end() && it->first <= end) {
            end = std::max(end, it->second);
            it = fetched_.erase(it);
        }
        fetched_.emplace(start, end);
    }
    [[nodiscard]] bool complete() const {
        return fetched_.size() == 1 && fetched_.begin()->first == 0 && fetched_.begin()->second >= size();
    }
    // Every byte was fetched once; hash what came out of order by fetching it again.
    Status finish() {
        if (hashed_ < size()) {
            log::info("blob {}: every byte fetched, {} of them out of order; fetching those again to check its digest",
                      name_, size() - hashed_);
            std::vector<std::byte> chunk(kChunk);
            while (hashed_ < size()) {
                auto got = inner_->read_at(chunk, hashed_);
                if (!got) return sys_error(EIO, fmt::format("checking blob {}: {}", name_, got.error().message()));
                if (*got == 0) return sys_error(EIO, fmt::format("checking blob {}: it ends early", name_));
                hasher_.update(std::span(chunk).first(*got));
                hashed_ += *got;
            }
        }
        auto digest = hasher_.finish();
        if (!digest) return sys_error(EIO, fmt::format("checking blob {}: SHA-256 failed", name_));
        if (*digest != expected_) return mismatch(name_, *digest);
        return {};
    }

    std::unique_ptr<BlobSource> inner_;
    std::string name_;
    Sha256 expected_;
    Hasher hasher_;
    std::uint64_t hashed_ = 0;
    std::map<std::uint64_t, std::uint64_t> fetched_;
    bool verified_ = false;
    bool failed_ = false;
};

}  // namespace

std::optional<Sha256> digest_from_name(std::string_view name) {
    if (!name.starts_with(kPrefix) || name.size() != kPrefix.size() + 64) return std::nullopt;
    Sha256 out{};
    for (std::size_t i = 0; i < out.size(); ++i) {
        unsigned v = 0;
        for (char c : name.substr(kPrefix.size() + 2 * i, 2)) {
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
            else return std::nullopt;
        }
        out[i] = static_cast<std::uint8_t>(v);
    }
    return out;
}

Status prepare_sha256() {
    if (auto api = load_crypto(); !api) return std::move(api).error();
    Hasher h;
    if (!h.ok() || !h.finish()) return logic_error("setting up SHA-256 (OpenSSL)");
    return {};
}

Result<std::unique_ptr<BlobSource>> VerifyingBackend::open(std::string_view name) {
    auto blob = inner_.open(name);
    const auto expected = digest_from_name(name);
    if (!blob || !expected) return blob;
    const std::string shown(name);
    if ((*blob)->size() > whole_blob_limit_)
        return std::unique_ptr<BlobSource>(std::make_unique<VerifiedWhenComplete>(std::move(*blob), shown, *expected));
    std::vector<std::byte> data(static_cast<std::size_t>((*blob)->size()));
    for (std::uint64_t pos = 0; pos < data.size();) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, data.size() - pos));
        auto got = (*blob)->read_at(std::span(data).subspan(static_cast<std::size_t>(pos), want), pos);
        if (!got) return std::move(got).error();
        if (*got == 0) return sys_error(EIO, fmt::format("blob {} ends at {}, before its size {}", shown, pos, data.size()));
        pos += *got;
    }
    Hasher h;
    h.update(data);
    auto digest = h.finish();
    if (!digest) return sys_error(EIO, fmt::format("checking blob {}: SHA-256 failed", shown));
    if (*digest != *expected) return mismatch(shown, *digest);
    return std::unique_ptr<BlobSource>(std::make_unique<VerifiedInMemory>(std::move(data)));
}

}  // namespace cfs::worker
