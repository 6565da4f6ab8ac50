// libFuzzer target: the supervisor<->worker protocol decoder on arbitrary bytes,
// with every fd count 0..4. What decode() accepts must re-encode to exactly the
// same bytes (the encoding is canonical, so nothing in a message goes unchecked),
// and carry exactly the fds its type declares.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "common/worker_protocol.h"

namespace {

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "worker_protocol_fuzz: invariant violated: %s\n", what);
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace cfs::wire;
    const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
    int accepted = 0;
    for (std::size_t fds = 0; fds <= 4; ++fds) {
        auto decoded = decode(in, fds);
        if (!decoded) {
            require(!decoded.error().context.empty(), "rejection without a reason");
            continue;
        }
        ++accepted;
        const Type type = type_of(*decoded);
        require(fd_count(type) == fds, "accepted with the wrong number of fds");
        require(size <= kMaxMessageSize, "accepted an oversized message");
        std::uint32_t raw_type;
        std::memcpy(&raw_type, data, sizeof raw_type);
        require(raw_type == static_cast<std::uint32_t>(type), "decoded to another type");
        const std::vector<std::byte> again = encode(*decoded);
        require(again.size() == size && std::memcmp(again.data(), data, size) == 0,
                "re-encoding does not give the same bytes");
        auto twice = decode(again, fds);
        require(twice.ok() && type_of(*twice) == type, "re-encoded message does not decode");
    }
    require(accepted <= 1, "accepted with more than one fd count");
    return 0;
}
