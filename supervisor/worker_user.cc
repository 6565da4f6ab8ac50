#include "supervisor/worker_user.h"

#include <pwd.h>
#include <unistd.h>

#include <vector>

#include <fmt/format.h>

#include "supervisor/nss_lookup.h"

namespace cfs::supervisor {

Result<WorkerUser> resolve_worker_user(std::string_view name) {
    const std::string user(name);
    std::vector<char> buffer(16384);
    passwd entry{};
    passwd* found = nullptr;
    const int rc = lookup_growing_buffer(buffer, std::size_t{1} << 20, [&](char* room, std::size_t size) {
        return ::getpwnam_r(user.c_str(), &entry, room, size, &found);
    });
    if (rc != 0) return sys_error(rc, fmt::format("looking up the workers' user \"{}\" (workers.user)", user));
    if (found == nullptr)
        return logic_error(fmt::format("the workers' user \"{}\" (workers.user) does not exist; the default one is "
                                       "created by units/cfsupervisor.sysusers (systemd-sysusers)",
                                       user));
    if (entry.pw_uid == 0 || entry.pw_gid == 0)
        return logic_error(fmt::format("the workers' user \"{}\" (workers.user) has uid {} and gid {}; workers must "
                                       "not run with uid or gid 0",
                                       user, entry.pw_uid, entry.pw_gid));
    return WorkerUser{user, entry.pw_uid, entry.pw_gid};
}

}  // namespace cfs::supervisor
