#include "worker/chunk_manifest.h"

#include <cerrno>
#include <charconv>
#include <optional>

#include <fmt/format.h>

namespace cfs::worker {
namespace {

std::optional<std::uint64_t> number(std::string_view s) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

// "key value" with exactly one space, as the format writes it.
std::optional<std::uint64_t> keyed(std::string_view line, std::string_view key) {
    if (!line.starts_with(key) || line.size() <= key.size() || line[key.size()] != ' ') return std::nullopt;
    return number(line.substr(key.size() + 1));
}

}  // namespace

Result<ChunkManifest> parse_chunk_manifest(std::string_view text, std::string_view source) {
    auto bad = [source](std::size_t line, std::string_view why) {
        return sys_error(EIO, fmt::format("chunk manifest {} line {}: {}", source, line, why));
    };
    if (text.size() > kMaxManifestBytes)
        return sys_error(EIO, fmt::format("chunk manifest {} is larger than {} bytes", source, kMaxManifestBytes));
    ChunkManifest m;
    enum class Want { magic, chunk_size, size, digests } want = Want::magic;
    std::size_t line_no = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;
        if (line.empty() || line.starts_with('#')) continue;
        switch (want) {
        case Want::magic:
            if (line != "cfs-chunks 1") return bad(line_no, "expected \"cfs-chunks 1\"");
            want = Want::chunk_size;
            break;
        case Want::chunk_size: {
            auto v = keyed(line, "chunk_size");
            if (!v) return bad(line_no, "expected \"chunk_size <bytes>\"");
            if (*v < kMinChunkSize || *v > kMaxChunkSize || *v % kMinChunkSize != 0)
                return bad(line_no, fmt::format("chunk_size {} is not a multiple of {} from {} to {}", *v,
                                                kMinChunkSize, kMinChunkSize, kMaxChunkSize));
            m.chunk_size = *v;
            want = Want::size;
            break;
        }
        case Want::size: {
            auto v = keyed(line, "size");
            if (!v) return bad(line_no, "expected \"size <bytes>\"");
            m.blob_size = *v;
            want = Want::digests;
            break;
        }
        case Want::digests: {
            const auto end = line.find_first_of(" \t");
            auto d = from_hex(line.substr(0, end));
            if (!d) return bad(line_no, "expected a chunk's SHA-256 as 64 lowercase hex digits");
            if (m.chunks.size() * m.chunk_size >= m.blob_size)
                return bad(line_no, fmt::format("more chunk digests than the {} chunks of {} bytes",
                                                m.chunks.size(), m.blob_size));
            m.chunks.push_back(*d);
            break;
        }
        }
    }
    if (want != Want::digests) return bad(line_no, "ends before its chunk digests");
    const std::uint64_t expected = (m.blob_size + m.chunk_size - 1) / m.chunk_size;
    if (m.chunks.size() != expected)
        return bad(line_no, fmt::format("{} chunk digests, but a blob of {} bytes has {} chunks of {}",
                                        m.chunks.size(), m.blob_size, expected, m.chunk_size));
    return m;
}

}  // namespace cfs::worker
