// `cfsupervisor check-policy [--config FILE] [--policy FILE]`: prints the sandbox a
// worker of this build enters (its user, limits, namespaces, Landlock and the seccomp
// rules, as compiled) and exits non-zero, naming file:line, if the policy is invalid.
// --policy checks an edited copy of policy/worker.seccomp instead of the built-in one.
#pragma once

#include <cstdio>
#include <string>

namespace cfs::supervisor {

struct CheckPolicyOptions {
    std::string config_path;
    bool config_given = false;  // if not, a missing config file means the defaults
    std::string policy_path;    // empty: the built-in policy
};

// Prints to `out`, errors to the log (stderr); returns the process exit status.
[[nodiscard]] int check_policy(const CheckPolicyOptions& options, std::FILE* out);

}  // namespace cfs::supervisor
