// Reading a BlobSource in tests: a range as a string (or the error, so a CHECK shows
// it), and a whole blob in fixed-size reads.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <string_view>
#include <cstdint>
#include <string>
#include <vector>

#include "worker/blob_backend.h"

namespace cfs::testing {

// What a blob holding `data` reads at `offset` into `buffer`: the bytes there, fewer
// at its end, none past it (the fake blobs' read_at).
inline std::size_t read_from(std::string_view data, std::span<std::byte> buffer, std::uint64_t offset) {
    if (offset >= data.size()) return 0;
    const std::size_t n = std::min<std::size_t>(buffer.size(), data.size() - offset);
    std::memcpy(buffer.data(), data.data() + offset, n);
    return n;
}

// splitmix64's finalizer: a bijection, so distinct inputs give distinct words.
inline std::uint64_t mix64(std::uint64_t z) {
    z += 0x9e3779b97f4a7c15;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
}

// n bytes that differ from block to block (and with `seed`), so a range read from
// the wrong place shows. A hash of the position, not a formula in it: one in i
// repeats ((i * 131 + i / 4096 * 7) & 0xff did every MiB, so a read whole MiBs off
// compared equal). No two of its 8-byte words are alike.
inline std::string pattern(std::size_t n, unsigned seed = 0) {
    std::string s(n, '\0');
    std::uint64_t word = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (i % 8 == 0) word = mix64((std::uint64_t{seed} << 40) ^ (i / 8));
        s[i] = static_cast<char>(word >> (i % 8 * 8));
    }
    return s;
}

// The bytes read at `offset`, or "ERROR <message>" with the errno in `err`.
inline std::string read_range(worker::BlobSource& b, std::uint64_t offset, std::size_t n, int* err = nullptr) {
    std::vector<std::byte> buf(n);
    auto got = b.read_at(buf, offset);
    if (!got) {
        if (err != nullptr) *err = got.error().errnum;
        return "ERROR " + got.error().message();
    }
    return std::string(reinterpret_cast<const char*>(buf.data()), *got);
}

// Every byte, in reads of `chunk` bytes until a short one; a failed read fails the test.
inline std::string read_all(worker::BlobSource& blob, std::size_t chunk) {
    std::string out;
    std::vector<std::byte> buf(chunk);
    for (std::uint64_t pos = 0;;) {
        auto got = blob.read_at(buf, pos);
        REQUIRE_MESSAGE(got, got.error().message());
        out.append(reinterpret_cast<const char*>(buf.data()), *got);
        pos += *got;
        if (*got < chunk) break;
    }
    return out;
}

}  // namespace cfs::testing
