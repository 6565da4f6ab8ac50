#include "worker/verifying_backend.h"

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/blob_name.h"
#include "common/log.h"
#include "worker/chunk_manifest.h"
#include "worker/chunk_verified_source.h"
#include "worker/crypto_api.h"

namespace cfs::worker {
namespace {

constexpr std::string_view kPrefix = "sha256:";
constexpr std::size_t kChunk = std::size_t{1} << 20;

// A large blob, checked when every byte of it was fetched.
class VerifiedWhenComplete final : public BlobSource {
public:
    VerifiedWhenComplete(std::unique_ptr<BlobSource> inner, std::string name, Sha256 expected,
                         std::function<void()> on_mismatch)
        : inner_(std::move(inner)), name_(std::move(name)), expected_(expected),
          on_mismatch_(std::move(on_mismatch)) {}
    // The check is this worker's alone (README, "Remote blobs"): a blob it served in
    // part but never saw whole went unchecked, which the operator should know.
    ~VerifiedWhenComplete() override {
        if (verified_ || failed_ || fetched_.empty()) return;
        std::uint64_t fetched = 0;
        for (const auto& [start, end] : fetched_) fetched += end - start;
        log::warning("blob {} was served without its digest checked: this worker fetched {} of its {} bytes (the "
                     "others through other workers, or from the cache file)",
                     name_, fetched, size());
    }
    VerifiedWhenComplete(const VerifiedWhenComplete&) = delete;
    VerifiedWhenComplete& operator=(const VerifiedWhenComplete&) = delete;
    std::uint64_t size() const override { return inner_->size(); }

    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override {
        if (failed_) return sys_error(EIO, fmt::format("blob {} failed verification earlier; not served", name_));
        auto got = inner_->read_at(buffer, offset);
        if (!got || *got == 0 || verified_) return got;
        hash_in_order(buffer.first(*got), offset);
        note_fetched(offset, offset + *got);
        if (!complete()) return got;
        if (auto done = finish(); !done) {
            if (!failed_) {
                // The blob could not be fetched again to check it (the server gone for
                // a while): this READ's own bytes are fine, and the next READ resumes
                // the check where this one stopped.
                log::warning("{}; checked at its next READ", done.error().message());
                return got;
            }
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
    // Sets failed_ when the blob is bad; a fetch that failed leaves it unset, and the
    // hash where it got to.
    Status finish() {
        if (hashed_ < size()) {
            log::info("blob {}: every byte fetched, {} of them out of order; fetching those again to check its digest",
                      name_, size() - hashed_);
            std::vector<std::byte> chunk(kChunk);
            while (hashed_ < size()) {
                auto got = inner_->read_at(chunk, hashed_);
                if (!got) return sys_error(EIO, fmt::format("checking blob {}: {}", name_, got.error().message()));
                if (*got == 0) {
                    failed_ = true;
                    return sys_error(EIO, fmt::format("checking blob {}: it ends early", name_));
                }
                hasher_.update(std::span(chunk).first(*got));
                hashed_ += *got;
            }
        }
        failed_ = true;
        auto digest = hasher_.finish();
        if (!digest) return sys_error(EIO, fmt::format("checking blob {}: SHA-256 failed", name_));
        if (*digest != expected_) {
            if (on_mismatch_) on_mismatch_();
            return digest_mismatch(name_, *digest);
        }
        failed_ = false;
        return {};
    }

    std::unique_ptr<BlobSource> inner_;
    std::string name_;
    Sha256 expected_;
    std::function<void()> on_mismatch_;
    Hasher hasher_;
    std::uint64_t hashed_ = 0;
    std::map<std::uint64_t, std::uint64_t> fetched_;
    bool verified_ = false;
    bool failed_ = false;
};

}  // namespace

std::optional<Sha256> digest_from_name(std::string_view name) {
    if (!name.starts_with(kPrefix)) return std::nullopt;
    return from_hex(name.substr(kPrefix.size()));
}

Status prepare_sha256() {
    if (auto api = load_crypto(); !api) return std::move(api).error();
    Hasher h;
    if (!h.ok() || !h.finish()) return logic_error("setting up SHA-256 (OpenSSL)");
    return {};
}

Result<std::optional<std::string>> VerifyingBackend::read_manifest(std::string_view name) {
    if (manifests_ == nullptr) return std::optional<std::string>{};
    const std::string file = std::string(name) + std::string(kChunkManifestSuffix);
    // A name too long to have a manifest next to it has none.
    if (file.size() > kMaxBlobNameLength) return std::optional<std::string>{};
    auto opened = manifests_->open(file);
    if (!opened) {
        if (opened.error().errnum == ENOENT) return std::optional<std::string>{};
        return sys_error(EIO, fmt::format("chunk manifest {}: {}", file, opened.error().message()));
    }
    const std::uint64_t size = (*opened)->size();
    if (size > kMaxManifestBytes)
        return sys_error(EIO, fmt::format("chunk manifest {} is larger than {} bytes", file, kMaxManifestBytes));
    std::string text(static_cast<std::size_t>(size), '\0');
    auto got = (*opened)->read_at(std::as_writable_bytes(std::span(text)), 0);
    if (!got) return sys_error(EIO, fmt::format("chunk manifest {}: {}", file, got.error().message()));
    text.resize(*got);
    return std::optional<std::string>(std::move(text));
}

Result<std::unique_ptr<BlobSource>> VerifyingBackend::open(std::string_view name) {
    return checked(name, inner_.open(name));
}

Result<std::unique_ptr<BlobSource>> VerifyingBackend::open_with_size(std::string_view name, std::uint64_t size) {
    return checked(name, inner_.open_with_size(name, size));
}

Result<std::unique_ptr<BlobSource>> VerifyingBackend::checked(std::string_view name,
                                                              Result<std::unique_ptr<BlobSource>> blob) {
    if (!blob) return blob;
    const std::string shown(name);
    auto manifest_text = read_manifest(name);
    if (!manifest_text) return std::move(manifest_text).error();
    if (*manifest_text) {
        const std::string file = shown + std::string(kChunkManifestSuffix);
        auto manifest = parse_chunk_manifest(**manifest_text, file);
        if (!manifest) return std::move(manifest).error();
        if (manifest->blob_size != (*blob)->size())
            return sys_error(EIO, fmt::format("chunk manifest {} is for {} bytes, but blob {} has {}", file,
                                              manifest->blob_size, shown, (*blob)->size()));
        log::info("blob {}: checked by chunks of {} bytes against {}", shown, manifest->chunk_size, file);
        return std::unique_ptr<BlobSource>(
            std::make_unique<ChunkVerifiedSource>(std::move(*blob), shown, std::move(*manifest), *chunk_cache_,
                                                  on_mismatch_));
    }
    const auto expected = digest_from_name(name);
    if (!expected) return blob;
    if ((*blob)->size() > whole_blob_limit_)
        return std::unique_ptr<BlobSource>(std::make_unique<VerifiedWhenComplete>(std::move(*blob), shown, *expected, on_mismatch_));
    return pool_->hold(std::move(*blob), shown, *expected, on_mismatch_);
}

}  // namespace cfs::worker
