#include "worker/chunk_verified_source.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/log.h"

namespace cfs::worker {

ChunkVerifiedSource::ChunkVerifiedSource(std::unique_ptr<BlobSource> inner, std::string name,
                                         ChunkManifest manifest, std::function<void()> on_mismatch)
    : inner_(std::move(inner)), name_(std::move(name)), manifest_(std::move(manifest)),
      on_mismatch_(std::move(on_mismatch)) {}

Result<std::size_t> ChunkVerifiedSource::read_at(std::span<std::byte> buffer, std::uint64_t offset) {
    if (offset >= size()) return std::size_t{0};
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size() - offset));
    for (std::size_t done = 0; done < n;) {
        const std::uint64_t pos = offset + done;
        auto c = chunk(pos / manifest_.chunk_size);
        if (!c) return std::move(c).error();
        const std::size_t in_chunk = static_cast<std::size_t>(pos % manifest_.chunk_size);
        const std::size_t take = std::min(n - done, (*c)->data.size() - in_chunk);
        std::memcpy(buffer.data() + done, (*c)->data.data() + in_chunk, take);
        done += take;
    }
    return n;
}

Result<const ChunkVerifiedSource::Slot*> ChunkVerifiedSource::chunk(std::uint64_t index) {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].index == index) {
            newest_ = i;
            return &slots_[i];
        }
    }
    const std::size_t target = 1 - newest_;
    Slot& slot = slots_[target];
    slot.index = UINT64_MAX;  // holds nothing until this chunk is verified
    const std::uint64_t begin = index * manifest_.chunk_size;
    const std::uint64_t end = std::min(begin + manifest_.chunk_size, size());
    slot.data.resize(static_cast<std::size_t>(end - begin));
    for (std::size_t got_so_far = 0; got_so_far < slot.data.size();) {
        auto got = inner_->read_at(std::span(slot.data).subspan(got_so_far), begin + got_so_far);
        if (!got) return std::move(got).error();
        if (*got == 0)
            return sys_error(EIO, fmt::format("blob {} ends at {}, inside chunk {} (bytes {}-{}) of its manifest",
                                              name_, begin + got_so_far, index, begin, end - 1));
        got_so_far += *got;
    }
    auto digest = sha256_of(slot.data);
    if (!digest) return sys_error(EIO, fmt::format("checking blob {} chunk {}: SHA-256 failed", name_, index));
    if (*digest != manifest_.chunks[index]) {
        if (on_mismatch_) on_mismatch_();
        auto err = sys_error(EIO, fmt::format("blob {} chunk {} (bytes {}-{}) failed verification: expected "
                                              "sha256:{}, got sha256:{}; none of it served or cached",
                                              name_, index, begin, end - 1, to_hex(manifest_.chunks[index]),
                                              to_hex(*digest)));
        log::error("{}", err.message());
        return err;
    }
    slot.index = index;
    newest_ = target;
    return &slot;
}

}  // namespace cfs::worker
