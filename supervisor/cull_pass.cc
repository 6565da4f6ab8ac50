#include "supervisor/cull_pass.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "supervisor/worker_process.h"

namespace cfs::supervisor {
namespace {

// What the child writes to its pipe: one write, less than PIPE_BUF, so whole or not
// at all.
struct WireOutcome {
    CullReport report;
    std::uint8_t ok = 0;
    std::uint8_t still_short = 0;
    std::uint16_t text_size = 0;
    char text[1024] = {};
};
static_assert(std::is_trivially_copyable_v<WireOutcome>);
static_assert(sizeof(WireOutcome) <= PIPE_BUF);

// Closes every fd from 3 on but `a` and `b`.
void close_all_but(int a, int b) {
    if (a > b) std::swap(a, b);
    if (a > 3) ::syscall(SYS_close_range, 3U, static_cast<unsigned>(a - 1), 0U);
    if (b > a + 1) ::syscall(SYS_close_range, static_cast<unsigned>(a + 1), static_cast<unsigned>(b - 1), 0U);
    ::syscall(SYS_close_range, static_cast<unsigned>(b + 1), ~0U, 0U);
}

[[noreturn]] void run_child(int device, int report, const std::string& cache_dir, unsigned run_percent, pid_t parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);  // the supervisor died before the line above
    close_all_but(device, report);
    WireOutcome wire{};
    std::string text;
    if (auto outcome = cull_to_run_limit(device, cache_dir, run_percent)) {
        wire.ok = 1;
        wire.report = outcome->report;
        wire.still_short = outcome->still_short ? 1 : 0;
        text = std::move(outcome->failure);
    } else {
        text = outcome.error().message();
    }
    wire.text_size = static_cast<std::uint16_t>(std::min(text.size(), sizeof wire.text));
    std::memcpy(wire.text, text.data(), wire.text_size);
    (void)!::write(report, &wire, sizeof wire);
    ::_exit(0);
}

}  // namespace

CullPass::CullPass(pid_t pid, unique_fd pidfd, unique_fd report)
    : pid_(pid), pidfd_(std::move(pidfd)), report_(std::move(report)) {}

CullPass::CullPass(CullPass&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), pidfd_(std::move(other.pidfd_)), report_(std::move(other.report_)) {}

CullPass::~CullPass() {
    if (pid_ <= 0) return;
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0U);
    siginfo_t info{};
    (void)::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED);
}

Result<CullPass> CullPass::start(int device, const std::string& cache_dir, unsigned run_percent) {
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC | O_NONBLOCK) < 0) return sys_error("creating the cull pass's report pipe");
    unique_fd read_end(ends[0]), write_end(ends[1]);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return sys_error("forking the cull pass");
    if (pid == 0) run_child(device, write_end.get(), cache_dir, run_percent, parent);
    auto pidfd = pidfd_for_child(pid, "watching the cull pass");
    if (!pidfd) return std::move(pidfd).error();
    return CullPass(pid, std::move(*pidfd), std::move(read_end));
}

Result<CullOutcome> CullPass::finish() {
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED) < 0)
        return sys_error("reaping the cull pass");
    pid_ = -1;
    WireOutcome wire{};
    if (::read(report_.get(), &wire, sizeof wire) != static_cast<ssize_t>(sizeof wire))
        return logic_error(
            fmt::format("the cull pass ended without a report ({})", describe_exit(info.si_code, info.si_status)));
    std::string text(wire.text, std::min<std::size_t>(wire.text_size, sizeof wire.text));
    if (wire.ok == 0) return logic_error(std::move(text));
    return CullOutcome{wire.report, wire.still_short != 0, std::move(text)};
}

}  // namespace cfs::supervisor
