// Where blob bytes come from. The worker asks a backend for a blob by its name (the
// kernel's cookie key, already validated as a plain file name) and reads ranges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "common/result.h"

namespace cfs::worker {

class BlobSource {
public:
    virtual ~BlobSource() = default;
    [[nodiscard]] virtual std::uint64_t size() const = 0;
    // Fills `buffer` from `offset` as far as the blob goes; fewer bytes only at its end.
    [[nodiscard]] virtual Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) = 0;
    // A hint: these bytes are read next. A source that can fetch them in the
    // background starts now, so the fetch overlaps the worker's write of what it
    // holds (a local blob: the kernel reads them ahead). Never fails.
    virtual void will_need(std::uint64_t /*offset*/, std::uint64_t /*length*/) {}
};

class BlobBackend {
public:
    virtual ~BlobBackend() = default;
    // Errors carry the errno the kernel should see in `copen <id>,-errno`.
    [[nodiscard]] virtual Result<std::unique_ptr<BlobSource>> open(std::string_view name) = 0;
    // The same for a blob whose size is known already: an object's, fixed when the
    // worker that answered its OPEN opened the blob, and handed with the object to
    // every worker that serves it later (a spare after a failover, another worker a
    // READ lands on). A backend that asks the store for a blob's size (HTTP: a HEAD
    // round trip, before the READ that waits) takes this one; one that takes the size
    // from the store as it is now (a local file) refuses a blob of another size (EIO);
    // the rest open as open() does.
    [[nodiscard]] virtual Result<std::unique_ptr<BlobSource>> open_with_size(std::string_view name,
                                                                             std::uint64_t /*size*/) {
        return open(name);
    }
    // For a spare, before any READ wants the blob: opened only where that asks no
    // server and holds no memory beyond an fd (no HTTP request, no manifest), so the
    // READ after a failover finds it open; null otherwise, and the READ opens it with
    // open_with_size, reporting what fails. A local directory opens ahead (a
    // directory on a network filesystem is local here: its open is the kernel's).
    [[nodiscard]] virtual std::unique_ptr<BlobSource> open_ahead(std::string_view /*name*/, std::uint64_t /*size*/) {
        return nullptr;
    }
};

}  // namespace cfs::worker
