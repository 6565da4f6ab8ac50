#include "supervisor/check_policy.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/config.h"
#include "common/log.h"
#include "common/seccomp_policy.h"
#include "common/worker_sandbox.h"
#include "supervisor/worker_user.h"

namespace cfs::supervisor {
namespace {

constexpr unsigned kLandlockCreateRulesetVersion = 1U << 0;

std::string landlock_here() {
    const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, kLandlockCreateRulesetVersion);
    if (abi >= 0) return fmt::format("this kernel: Landlock ABI {}", abi);
    if (errno == ENOSYS) return "this kernel: no Landlock (not built in)";
    if (errno == EOPNOTSUPP) return "this kernel: no Landlock (disabled at boot)";
    return sys_error("this kernel: Landlock ABI unknown").message();
}

}  // namespace

int check_policy(const CheckPolicyOptions& options, std::FILE* to) {
    auto policy = options.policy_path.empty()
                      ? seccomp::parse_policy(seccomp::builtin_worker_policy(), seccomp::kBuiltinWorkerPolicyOrigin)
                      : seccomp::load_policy(options.policy_path);
    if (!policy) {
        log::error("{}", policy.error().message());
        return EXIT_FAILURE;
    }
    if (auto compiled = seccomp::compile(*policy, ::getpid()); !compiled) {
        log::error("{}", compiled.error().message());
        return EXIT_FAILURE;
    }
    // What workers with blobs.url add: checked on top of whichever base was given.
    auto remote = seccomp::extend_policy(*policy, seccomp::builtin_remote_worker_policy(),
                                         seccomp::kBuiltinRemoteWorkerPolicyOrigin);
    if (!remote) {
        log::error("{}", remote.error().message());
        return EXIT_FAILURE;
    }
    if (auto compiled = seccomp::compile(*remote, ::getpid()); !compiled) {
        log::error("{}", compiled.error().message());
        return EXIT_FAILURE;
    }

    std::string blob_url;
    std::string user_name(kDefaultWorkerUser);
    std::string user_source = fmt::format("the default; no config at {}", options.config_path);
    auto config = load_config(options.config_path);
    if (config) {
        user_name = config->worker_user;
        const auto describe = [](const BlobStoreConfig& store) {
            return store.allowed_origins.empty()
                       ? store.url
                       : fmt::format("{} (also {})", store.url, fmt::join(store.allowed_origins, ", "));
        };
        if (!config->blobs.url.empty()) blob_url = describe(config->blobs);
        for (const VolumeConfig& v : config->volumes) {
            if (v.blobs.url.empty()) continue;
            if (!blob_url.empty()) blob_url += "; ";
            blob_url += fmt::format("volume {}: {}", v.name, describe(v.blobs));
        }
        user_source = fmt::format("workers.user in {}", options.config_path);
    } else if (options.config_given || config.error().errnum != ENOENT) {
        log::error("{}", config.error().message());
        return kExitConfig;
    }
    auto user = resolve_worker_user(user_name);

    std::string out = fmt::format("worker sandbox, seccomp policy from {}\n\n", policy->origin);
    if (user)
        out += fmt::format("user        {} (uid {}, gid {}), {}\n", user->name, user->uid, user->gid, user_source);
    else
        out += fmt::format("user        {} ({}): NOT USABLE: {}\n", user_name, user_source, user.error().message());
    out += fmt::format("            {}\n", sandbox::kPrivileges);
    bool first = true;
    for (const sandbox::Limit& limit : sandbox::kLimits) {
        out += fmt::format("{:<12}{:<14} {:<10} {}\n", first ? "limits" : "", limit.name, limit.value, limit.why);
        first = false;
    }
    first = true;
    for (const sandbox::Namespace& ns : sandbox::kNamespaces) {
        out += fmt::format("{:<12}{:<8} {}\n", first ? "namespaces" : "", ns.name, ns.why);
        first = false;
    }
    out += fmt::format("landlock    {}\n            ({})\n", sandbox::kLandlock, landlock_here());
    out += fmt::format("remote      {}\n            {}\n",
                       blob_url.empty() ? std::string("no url in [blobs] or any [[volume]]: workers are local only")
                                        : fmt::format("blobs from {}: workers are remote", blob_url),
                       sandbox::kRemote);
    out += fmt::format("seccomp     any other system call, or one made through another architecture's ABI, kills "
                       "the worker (SIGSYS)\n            allowed, {} rules (SELF_PID: the worker's own pid):\n",
                       policy->rules.size());
    for (const seccomp::Rule& rule : policy->rules)
        out += fmt::format("              line {:<3} {}\n", rule.line, seccomp::describe(rule));
    const std::size_t added = remote->rules.size() - policy->rules.size();
    out += fmt::format("            remote workers (blobs.url) also, {} rules from {}:\n", added,
                       seccomp::kBuiltinRemoteWorkerPolicyOrigin);
    for (std::size_t i = policy->rules.size(); i < remote->rules.size(); ++i)
        out += fmt::format("              line {:<3} {}\n", remote->rules[i].line, seccomp::describe(remote->rules[i]));
    std::fputs(out.c_str(), to);
    return user ? EXIT_SUCCESS : EXIT_FAILURE;
}

}  // namespace cfs::supervisor
