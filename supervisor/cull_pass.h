// A cull pass (cache_cull.h) in a child process. On a big cache on a slow disk the
// walk and the culls take seconds, and the supervisor's event loop is what answers
// failovers and pings the watchdog meanwhile. The child also has a working
// directory of its own, which `cull` resolves names in. It holds the device fd and
// a pipe for its report and nothing else (no anon fd copy, which would keep an
// unmounted image's object, and its cache file, in use), and dies with the
// supervisor (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "supervisor/cache_cull.h"

namespace cfs::supervisor {

class CullPass {
public:
    // Forks the child, which runs cull_to_run_limit(device, cache_dir, run_percent).
    [[nodiscard]] static Result<CullPass> start(int device, const std::string& cache_dir,
                                                unsigned run_percent);

    CullPass(CullPass&& other) noexcept;
    CullPass& operator=(CullPass&&) = delete;
    CullPass(const CullPass&) = delete;
    CullPass& operator=(const CullPass&) = delete;
    // A pass still running is killed and reaped.
    ~CullPass();

    // Readable once the child has exited.
    [[nodiscard]] int pidfd() const { return pidfd_.get(); }
    // After that: what it did, or why it did not. Reaps the child.
    [[nodiscard]] Result<CullOutcome> finish();

private:
    CullPass(pid_t pid, unique_fd pidfd, unique_fd report);

    pid_t pid_ = -1;
    unique_fd pidfd_;
    unique_fd report_;
};

}  // namespace cfs::supervisor
