#include "worker/whole_blob_pool.h"

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "common/log.h"

namespace cfs::worker {
namespace {

constexpr std::size_t kFetchPiece = std::size_t{1} << 20;

}  // namespace

Error digest_mismatch(std::string_view name, const Sha256& got) {
    return sys_error(EIO, fmt::format("blob {} failed verification: its bytes hash to sha256:{}", name, to_hex(got)));
}

Result<std::vector<std::byte>> fetch_whole_checked(BlobSource& blob, std::string_view name, const Sha256& expected,
                                                   const std::function<void()>& on_mismatch) {
    std::vector<std::byte> data(static_cast<std::size_t>(blob.size()));
    for (std::uint64_t pos = 0; pos < data.size();) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kFetchPiece, data.size() - pos));
        auto got = blob.read_at(std::span(data).subspan(static_cast<std::size_t>(pos), want), pos);
        if (!got) return std::move(got).error();
        if (*got == 0) return sys_error(EIO, fmt::format("blob {} ends at {}, before its size {}", name, pos, data.size()));
        pos += *got;
    }
    Hasher h;
    h.update(data);
    auto digest = h.finish();
    if (!digest) return sys_error(EIO, fmt::format("checking blob {}: SHA-256 failed", name));
    if (*digest != expected) {
        if (on_mismatch) on_mismatch();
        return digest_mismatch(name, *digest);
    }
    return data;
}

class PooledBlob final : public BlobSource {
public:
    PooledBlob(WholeBlobPool& pool, std::unique_ptr<BlobSource> inner, std::string name, const Sha256& expected,
               std::function<void()> on_mismatch, std::vector<std::byte> data)
        : pool_(pool), inner_(std::move(inner)), name_(std::move(name)), expected_(expected),
          on_mismatch_(std::move(on_mismatch)), data_(std::move(data)) {
        pool_.enter(*this);
    }
    ~PooledBlob() override {
        if (held_) pool_.leave(*this);
    }
    PooledBlob(const PooledBlob&) = delete;
    PooledBlob& operator=(const PooledBlob&) = delete;

    std::uint64_t size() const override { return inner_->size(); }

    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override {
        if (offset >= size()) return std::size_t{0};
        if (held_) {
            pool_.touch(*this);
        } else {
            log::debug("blob {}: fetched and checked again; its bytes had made room for other blobs", name_);
            pool_.make_room(size());
            auto data = fetch_whole_checked(*inner_, name_, expected_, on_mismatch_);
            if (!data) return std::move(data).error();
            data_ = std::move(*data);
            pool_.enter(*this);
        }
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), data_.size() - offset));
        std::copy_n(data_.begin() + static_cast<std::ptrdiff_t>(offset), n, buffer.begin());
        return n;
    }

private:
    friend class WholeBlobPool;
    void drop_bytes() {
        std::vector<std::byte>().swap(data_);
        held_ = false;
    }

    WholeBlobPool& pool_;
    std::unique_ptr<BlobSource> inner_;  // to fetch it again
    std::string name_;
    Sha256 expected_;
    std::function<void()> on_mismatch_;
    std::vector<std::byte> data_;
    bool held_ = false;
    std::list<PooledBlob*>::iterator place_;  // in pool_.recent_ while held_
};

Result<std::unique_ptr<BlobSource>> WholeBlobPool::hold(std::unique_ptr<BlobSource> inner, std::string name,
                                                        const Sha256& expected, std::function<void()> on_mismatch) {
    make_room(inner->size());
    auto data = fetch_whole_checked(*inner, name, expected, on_mismatch);
    if (!data) return std::move(data).error();
    return std::unique_ptr<BlobSource>(std::make_unique<PooledBlob>(*this, std::move(inner), std::move(name), expected,
                                                                    std::move(on_mismatch), std::move(*data)));
}

void WholeBlobPool::make_room(std::uint64_t bytes) {
    while (!recent_.empty() && held_ + bytes > budget_) {
        PooledBlob* oldest = recent_.back();
        recent_.pop_back();
        held_ -= oldest->data_.size();
        oldest->drop_bytes();
    }
}

void WholeBlobPool::enter(PooledBlob& blob) {
    recent_.push_front(&blob);
    blob.place_ = recent_.begin();
    blob.held_ = true;
    held_ += blob.data_.size();
}

void WholeBlobPool::touch(PooledBlob& blob) { recent_.splice(recent_.begin(), recent_, blob.place_); }

void WholeBlobPool::leave(PooledBlob& blob) {
    recent_.erase(blob.place_);
    held_ -= blob.data_.size();
    blob.held_ = false;
}

}  // namespace cfs::worker
