// The blob stores (common/config.h: [blobs] and every [[volume]]) made ready once, at
// start, for every worker: each store's directory opened, the hosts of its url and
// allowed_origins resolved, its credentials read. A worker gets them right after Init
// as BlobStore messages, each followed by a BlobStoreDir with the directory when the
// store has one (common/worker_protocol.h). Doing it once here means a worker start
// (a failover) costs no lookup and no file read, and a store that cannot be used is
// a start-up error naming the table and key at fault, not a worker crash loop.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "common/config.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "common/worker_protocol.h"

namespace cfs::supervisor {

struct PreparedStore {
    wire::BlobStore message;
    unique_fd dir;      // empty when the store has no directory
    std::string dir_path;
    std::string label;  // "[blobs]" or "[[volume]] \"img_a\"", for logs
};

struct StoreFault {
    Error error;
    // What the supervisor exits with: kExitConfig for a fault only the operator can
    // mend (credentials file's owner or mode, too much to carry), EXIT_FAILURE for
    // one that may pass (a directory or host not there yet).
    int exit_status;
};

// Store 0 is [blobs]; store n is config.volumes[n - 1].
[[nodiscard]] std::variant<std::vector<PreparedStore>, StoreFault> prepare_blob_stores(const Config& config);

// The lines the supervisor logs at start: where each store's blobs come from.
[[nodiscard]] std::vector<std::string> describe_blob_stores(const std::vector<PreparedStore>& stores);

}  // namespace cfs::supervisor
