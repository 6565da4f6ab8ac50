// The supervisor's configuration file (TOML). The schema, with defaults:
//
//   [cache]
//   dir = "/var/cache/cfsupervisor"      # required: absolute path, handed to the kernel
//   tag = "cfs"                          # optional: 1..32 chars of [A-Za-z0-9_.-]
//   [blobs]
//   dir = "/var/lib/cfsupervisor/blobs"  # required: absolute path
//   url = "http://host:port/path/"       # optional: remote blobs (common/blob_url.h)
//   credentials = "/etc/cfsupervisor/registry-credentials"  # optional, with url only
//   allowed_origins = ["http://auth.local:5001"]  # optional, with url only
//   [workers]
//   count = 1                            # optional: integer 1..64
//   spares = 1                           # optional: integer 0..8, started and paused
//   user = "cfsupervisor-worker"         # optional: the user workers run as
//   read_ahead_kib = 4096                # optional: 0..65536, a multiple of 4; 0 = off
//   [control]
//   group = ""                           # optional: group allowed to read status
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

#include <string>
#include <string_view>
#include <vector>

namespace cfs {

// Created by units/cfsupervisor.sysusers.
inline constexpr std::string_view kDefaultWorkerUser = "cfsupervisor-worker";
// docs/benchmarks.md has the figures behind it.
inline constexpr unsigned kDefaultReadAheadKib = 4096;

struct Config {
    std::string cache_dir;
    std::string cache_tag = "cfs";
    std::string blob_dir;
    // [blobs] url: where a blob that is not in blob_dir is fetched from (HTTP range
    // requests; the blob's name appended). Empty: local blobs only. When set, workers
    // get network access (policy/README.md, "Remote workers").
    std::string blob_url;
    // [blobs] credentials: a file holding "user:password" for the blob server or its
    // token service (supervisor/blob_credentials.h). Empty: anonymous.
    std::string blob_credentials_file;
    // [blobs] allowed_origins: origins ("scheme://host[:port]") besides blob_url's that
    // workers may contact: the registry's token service (a Bearer challenge's realm)
    // and the blob store it redirects to. Each is resolved at start and its port
    // opened in the workers' Landlock rules; nothing else is ever contacted.
    std::vector<std::string> blob_allowed_origins;
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
};

// Parses TOML text; `origin` is the file name used in error messages.
[[nodiscard]] Result<Config> parse_config(std::string_view text, std::string_view origin);

// Reads and parses a file. A missing/unreadable file is an Error carrying errno and
// naming the path; a malformed one is an Error with errnum 0 (see above).
[[nodiscard]] Result<Config> load_config(const std::string& path);

inline constexpr int kExitConfig = 78;  // EX_CONFIG, what main() exits with on a bad config

}  // namespace cfs
