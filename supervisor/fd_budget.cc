#include "supervisor/fd_budget.h"

#include <sys/resource.h>

#include <algorithm>

#include "common/log.h"

namespace cfs::supervisor {

std::size_t object_budget_for(std::size_t fd_limit) {
    return fd_limit > kFdsReservedForOtherUses + 1 ? fd_limit - kFdsReservedForOtherUses : 1;
}

std::size_t object_budget() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) < 0) return object_budget_for(1024);
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised{limit.rlim_max, limit.rlim_max};
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    // RLIM_INFINITY is not a number of fds; the kernel's nr_open caps it anyway.
    const std::size_t fds = limit.rlim_cur == RLIM_INFINITY ? std::size_t{1} << 20
                                                            : static_cast<std::size_t>(limit.rlim_cur);
    const std::size_t budget = object_budget_for(fds);
    log::debug("fd limit {}: room for {} open objects", fds, budget);
    return budget;
}

}  // namespace cfs::supervisor
