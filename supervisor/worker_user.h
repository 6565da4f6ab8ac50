// The unprivileged user workers run as (config workers.user, by default
// cfsupervisor-worker from units/cfsupervisor.sysusers). The supervisor resolves
// the name and hands the worker the numeric ids; the worker switches to them inside
// its sandbox (worker/sandbox.h), where it cannot read /etc/passwd itself.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/result.h"

namespace cfs::supervisor {

struct WorkerUser {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;  // the user's primary group; workers get no supplementary groups
};

// Fails, naming the user, when it does not exist or is root (uid or gid 0).
[[nodiscard]] Result<WorkerUser> resolve_worker_user(std::string_view name);

}  // namespace cfs::supervisor
