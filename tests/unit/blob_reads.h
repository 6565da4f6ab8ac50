// Reading a BlobSource in tests: a range as a string (or the error, so a CHECK shows
// it), and a whole blob in fixed-size reads.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "worker/blob_backend.h"

namespace cfs::testing {

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
