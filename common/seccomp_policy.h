// The worker's seccomp allowlist as text (policy/worker.seccomp, compiled into the
// binaries at build time) and as a libseccomp filter. The worker compiles and loads it
// (worker/sandbox.cc); `cfsupervisor check-policy` parses, compiles and prints it.
//
// Syntax (the policy file's header says the same, for its reviewers):
//   # comment                          anywhere; runs to the end of the line
//   <syscall>                          allowed with any arguments
//   <syscall> <cond> [&& <cond>]...    allowed when every condition holds
//   <cond>  := arg<N> == <value>       argument N (0..5) equals the value
//            | arg<N> in <value>       argument N sets no bit outside the value
//   <value> := <term>[|<term>]...      <term>: decimal, 0x hex, or a known name
//                                      (kConstants in seccomp_policy.cc)
//            | SELF_PID                the pid of the process that loads the filter
//                                      (only alone, only with ==)
// Several lines for one syscall allow it when any of them matches; a syscall listed
// once without conditions may not be listed again. Everything not allowed kills the
// process (SCMP_ACT_KILL_PROCESS), so does any other architecture's syscall ABI.
//
// Every parse Error is one line "<origin>:<line>: <what is wrong>".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace cfs::seccomp {

struct Condition {
    enum class Op { equal, within, at_least };  // "==", "in", ">="
    unsigned arg = 0;
    Op op = Op::equal;
    std::uint64_t value = 0;
    bool self_pid = false;  // the value is SELF_PID, known only when compiled
    std::string text;       // as written ("arg1 == CACHEFILES_IOC_READ_COMPLETE")
};

// What 'argN >= VALUE' compiles to: the aligned blocks [value, value + size) that
// make up [VALUE, 2^32), each as (mask, value) for a masked compare of all 64 bits.
// The kernel truncates an int argument to 32 bits, so any upper bit set is refused.
[[nodiscard]] std::vector<std::pair<std::uint64_t, std::uint64_t>> at_least_blocks(std::uint64_t value);

struct Rule {
    std::string syscall;
    int number = 0;  // for the architecture this was built for
    std::vector<Condition> conditions;
    std::string origin;  // the policy file it comes from
    unsigned line = 0;
};

struct Policy {
    std::string origin;
    std::vector<Rule> rules;  // in file order
};

[[nodiscard]] Result<Policy> parse_policy(std::string_view text, std::string_view origin);
// A missing or unreadable file is an Error carrying errno and naming the path.
[[nodiscard]] Result<Policy> load_policy(const std::string& path);

// policy/worker.seccomp as it was when this binary was built: the policy every
// worker of this build applies.
[[nodiscard]] std::string_view builtin_worker_policy();
inline constexpr std::string_view kBuiltinWorkerPolicyOrigin = "policy/worker.seccomp (built in)";

// policy/worker-remote.seccomp as built: what a worker with a remote blob source
// (blobs.url) is allowed beyond builtin_worker_policy().
[[nodiscard]] std::string_view builtin_remote_worker_policy();
inline constexpr std::string_view kBuiltinRemoteWorkerPolicyOrigin = "policy/worker-remote.seccomp (built in)";

// `base` plus the rules of `text`, which may not repeat or contradict base's (the
// same checks as within one file; errors name the extension's origin and line).
[[nodiscard]] Result<Policy> extend_policy(const Policy& base, std::string_view text, std::string_view origin);

// The built-in policy a worker applies: the base one, extended with the remote one
// for workers with a remote blob source.
[[nodiscard]] Result<Policy> builtin_policy_for(bool remote);

// "tgkill arg0 == SELF_PID && arg2 == SIGABRT"
[[nodiscard]] std::string describe(const Rule& rule);

// A compiled filter, not yet loaded (libseccomp's scmp_filter_ctx, released on
// destruction). It kills the whole process on any syscall the policy does not allow,
// and is loaded with SECCOMP_FILTER_FLAG_TSYNC, so it covers every thread.
class Filter {
public:
    Filter(Filter&&) noexcept;
    Filter& operator=(Filter&&) noexcept;
    ~Filter();

    // Loads the filter into the calling process (all of its threads). Irrevocable.
    [[nodiscard]] Status load();

private:
    friend Result<Filter> compile(const Policy&, pid_t);
    struct Context;
    explicit Filter(std::unique_ptr<Context> ctx);
    std::unique_ptr<Context> ctx_;
};

// `self_pid` is what SELF_PID stands for.
[[nodiscard]] Result<Filter> compile(const Policy& policy, pid_t self_pid);

}  // namespace cfs::seccomp
