// The supervisor's configuration file (TOML). The schema, with defaults:
//
//   [cache]
//   dir = "/var/cache/cfsupervisor"      # required: absolute path, handed to the kernel
//   tag = "cfs"                          # optional: 1..32 chars of [A-Za-z0-9_.-]
//   cull_below_percent = 7               # optional: percent free (blocks and files)
//   cull_until_percent = 10              #   below which culling starts, up to which it
//   refuse_below_percent = 3             #   frees, below which the kernel refuses
//                                        #   writes; 1 <= refuse < cull_below < cull_until <= 99
//   [blobs]
//   dir = "/var/lib/cfsupervisor/blobs"  # required: absolute path
//   url = "http://host:port/path/"       # optional: remote blobs (common/blob_url.h)
//   credentials = "/etc/cfsupervisor/registry-credentials"  # optional, with url only
//   allowed_origins = ["http://auth.local:5001"]  # optional, with url only
//   [[volume]]                           # optional, repeated (at most 32): one volume's
//   name = "img_a"                       #   own blobs; the erofs fsid or domain_id
//   dir = "/srv/img_a-blobs"             #   at least one of dir and url; the other
//   url = "https://r.example/v2/a/blobs/"  #  keys as in [blobs]
//   [workers]
//   count = 1                            # optional: integer 1..64
//   spares = 1                           # optional: integer 0..8, started and paused
//   user = "cfsupervisor-worker"         # optional: the user workers run as
//   read_ahead_kib = 65536               # optional: 0..65536, a multiple of 4; 0 = off
//   [control]
//   group = "cfs-readers"                # optional (default none: root only): group allowed to read status
//   [log]
//   level = "info"                       # optional: debug|info|warning|error
//   [testing]                            # only in builds with CFS_FAULT_INJECTION
//   fault_file = "/run/cfs-fault"        # required in [testing]: absolute path
//
// cfsupervisor.toml.example at the top of the tree documents each key for operators.
//
// Every Error from this module is a single line that starts with
// "<file>:<line>:<column>: " and says what is wrong and what was expected. Only the
// first fault is reported, in a fixed order: TOML syntax, then unknown tables and keys
// (the one earliest in the file), then the schema's keys in the order above.
#pragma once

#include "common/log.h"
#include "common/result.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cfs {

// Created by units/cfsupervisor.sysusers.
inline constexpr std::string_view kDefaultWorkerUser = "cfsupervisor-worker";
// docs/benchmarks.md has the figures behind it.
inline constexpr unsigned kDefaultReadAheadKib = 65536;
// [[volume]] tables: each is one more message to every worker at its start, and its
// remote hosts one more set of pinned addresses.
inline constexpr std::size_t kMaxVolumes = 32;

// Where one set of blobs comes from: a local directory, a remote server, or both (the
// directory first: a blob found there is never fetched). [blobs] is the store of every
// volume no [[volume]] names; it always has a directory.
struct BlobStoreConfig {
    // Local blobs, and the chunk manifests of remote ones (worker/chunk_manifest.h).
    // Empty: none (a [[volume]] with a url only).
    std::string dir;
    // Where a blob that is not in dir is fetched from (HTTP range requests; the blob's
    // name appended; common/blob_url.h). Empty: local blobs only. When any store has
    // one, workers get network access (policy/README.md, "Remote workers").
    std::string url;
    // A file holding "user:password" for the blob server or its token service
    // (supervisor/blob_credentials.h). Empty: anonymous.
    std::string credentials_file;
    // Origins ("scheme://host[:port]") besides url's that workers may contact for
    // this store: the registry's token service (a Bearer challenge's realm) and the
    // blob store it redirects to. Each is resolved at start and its port opened in
    // the workers' Landlock rules; nothing else is ever contacted.
    std::vector<std::string> allowed_origins;

    bool operator==(const BlobStoreConfig&) const = default;
};

// A [[volume]] table: the blobs of the erofs images mounted with this fsid (or
// domain_id) come from `blobs` alone, never from [blobs].
struct VolumeConfig {
    // The kernel names the volume "erofs,<name>" in every OPEN.
    std::string name;
    BlobStoreConfig blobs;

    [[nodiscard]] std::string volume_key() const { return "erofs," + name; }
    bool operator==(const VolumeConfig&) const = default;
};

// Percent of the cache filesystem's blocks, and of its files, left free: culling
// starts below `cull` and frees up to `run`; the kernel refuses cache writes below
// `stop` (cachefilesd's brun/bcull/bstop and frun/fcull/fstop; the same three apply
// to blocks and files). The defaults are cachefilesd's: the kernel's own, 7/5/1%,
// leave 1% between a full disk and failing writes.
struct CullLimits {
    unsigned run = 10;   // [cache] cull_until_percent
    unsigned cull = 7;   // [cache] cull_below_percent
    unsigned stop = 3;   // [cache] refuse_below_percent

    bool operator==(const CullLimits&) const = default;
};

struct Config {
    std::string cache_dir;
    std::string cache_tag = "cfs";
    CullLimits cull_limits;
    BlobStoreConfig blobs;
    std::vector<VolumeConfig> volumes;  // in file order; names unique
    unsigned worker_count = 1;
    // Workers started ahead of need, paused, so a failover does not wait for a start.
    unsigned spare_count = 1;
    // The unprivileged user every worker switches to (worker/sandbox.h). Only the
    // name's form is checked here; the supervisor resolves it when it starts.
    std::string worker_user = std::string(kDefaultWorkerUser);
    // The largest read-ahead window per object (worker/read_ahead.h), in KiB; 0 copies
    // only what the kernel asks for. Sent to workers in Init.
    unsigned read_ahead_kib = kDefaultReadAheadKib;
    // [control] group: members may read `cfsupervisor status` (root may always, and
    // alone may run admin commands). Empty: root only.
    std::string control_group;
    log::Level log_level = log::Level::info;
    // [testing] fault_file: test builds only (common/fault_point.h). Each worker
    // start reads it: "<fault point> [<how many workers>]"; absent means no fault.
    std::string fault_file;

    bool operator==(const Config&) const = default;

    // True when some store has a url: workers then keep the network namespace.
    [[nodiscard]] bool any_remote() const;
};

// Parses TOML text; `origin` is the file name used in error messages.
[[nodiscard]] Result<Config> parse_config(std::string_view text, std::string_view origin);

// Reads and parses a file. A missing/unreadable file is an Error carrying errno and
// naming the path; a malformed one is an Error with errnum 0 (see above).
[[nodiscard]] Result<Config> load_config(const std::string& path);

inline constexpr int kExitConfig = 78;  // EX_CONFIG, what main() exits with on a bad config

}  // namespace cfs
