#include "worker/chunk_verified_source.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/log.h"

namespace cfs::worker {

const std::vector<std::byte>* ChunkCache::find(const void* blob, std::uint64_t index) {
    for (auto& s : slots_)
        if (s.blob == blob && s.index == index) return &s.data;
    return nullptr;
}

void ChunkCache::put(const void* blob, std::uint64_t index, std::span<const std::byte> data) {
    for (auto& s : slots_)
        if (s.blob == blob && s.index == index) return;
    newest_ = 1 - newest_;
    Slot& s = slots_[newest_];
    s.blob = blob;
    s.index = index;
    s.data.assign(data.begin(), data.end());
}

void ChunkCache::forget(const void* blob) {
    for (auto& s : slots_)
        if (s.blob == blob) {
            s.blob = nullptr;
            // Its memory too: up to a 16 MiB chunk, against the worker's RLIMIT_DATA.
            std::vector<std::byte>().swap(s.data);
        }
}

std::size_t ChunkCache::bytes_held() const {
    std::size_t n = 0;
    for (const auto& s : slots_) n += s.data.capacity();
    return n;
}

ChunkVerifiedSource::ChunkVerifiedSource(std::unique_ptr<BlobSource> inner, std::string name,
                                         ChunkManifest manifest, ChunkCache& cache,
                                         std::function<void()> on_mismatch)
    : inner_(std::move(inner)), name_(std::move(name)), manifest_(std::move(manifest)), cache_(cache),
      on_mismatch_(std::move(on_mismatch)) {}

Result<std::size_t> ChunkVerifiedSource::read_at(std::span<std::byte> buffer, std::uint64_t offset) {
    if (offset >= size() || buffer.empty()) return std::size_t{0};
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size() - offset));
    const std::uint64_t cs = manifest_.chunk_size;
    // Copies what chunk `index`, whose bytes start at `data`, holds of the range asked for.
    auto copy_out = [&](std::uint64_t index, const std::byte* data, std::size_t len) {
        const std::uint64_t chunk_begin = index * cs;
        const std::uint64_t from = std::max(offset, chunk_begin);
        const std::uint64_t to = std::min<std::uint64_t>(offset + n, chunk_begin + len);
        if (from < to)
            std::memcpy(buffer.data() + (from - offset), data + (from - chunk_begin), static_cast<std::size_t>(to - from));
    };
    const std::uint64_t last = (offset + n - 1) / cs;
    std::vector<std::byte> fetched;
    for (std::uint64_t index = offset / cs; index <= last;) {
        if (const auto* held = cache_.find(this, index)) {
            copy_out(index, held->data(), held->size());
            ++index;
            continue;
        }
        std::uint64_t end = index + 1;
        while (end <= last && cache_.find(this, end) == nullptr) ++end;
        if (auto ok = fetch_verified(index, end, fetched); !ok) return std::move(ok).error();
        for (std::uint64_t k = index; k < end; ++k) {
            const std::size_t at = static_cast<std::size_t>((k - index) * cs);
            const std::size_t len = std::min<std::size_t>(static_cast<std::size_t>(cs), fetched.size() - at);
            copy_out(k, fetched.data() + at, len);
            // The last chunk is the one the next read most likely starts in.
            if (k + 1 == end) cache_.put(this, k, std::span(fetched).subspan(at, len));
        }
        index = end;
    }
    return n;
}

Status ChunkVerifiedSource::fetch_verified(std::uint64_t first, std::uint64_t end, std::vector<std::byte>& out) {
    const std::uint64_t cs = manifest_.chunk_size;
    const std::uint64_t begin = first * cs;
    const std::uint64_t stop = std::min(end * cs, size());
    out.resize(static_cast<std::size_t>(stop - begin));
    for (std::size_t got_so_far = 0; got_so_far < out.size();) {
        auto got = inner_->read_at(std::span(out).subspan(got_so_far), begin + got_so_far);
        if (!got) return std::move(got).error();
        if (*got == 0)
            return sys_error(EIO, fmt::format("blob {} ends at {}, before the end of chunk {} of its manifest", name_,
                                              begin + got_so_far, (begin + got_so_far) / cs));
        got_so_far += *got;
    }
    for (std::uint64_t k = first; k < end; ++k) {
        const std::uint64_t chunk_begin = k * cs;
        const std::uint64_t chunk_end = std::min(chunk_begin + cs, size());
        const auto bytes = std::span(out).subspan(static_cast<std::size_t>(chunk_begin - begin),
                                                  static_cast<std::size_t>(chunk_end - chunk_begin));
        auto digest = sha256_of(bytes);
        if (!digest) return sys_error(EIO, fmt::format("checking blob {} chunk {}: SHA-256 failed", name_, k));
        if (*digest == manifest_.chunks[k]) continue;
        if (on_mismatch_) on_mismatch_();
        auto err = sys_error(EIO, fmt::format("blob {} chunk {} (bytes {}-{}) failed verification: expected "
                                              "sha256:{}, got sha256:{}; not served, so not cached",
                                              name_, k, chunk_begin, chunk_end - 1, to_hex(manifest_.chunks[k]),
                                              to_hex(*digest)));
        log::error("{}", err.message());
        return err;
    }
    return {};
}

}  // namespace cfs::worker
