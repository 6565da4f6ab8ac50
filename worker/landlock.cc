#include "worker/landlock.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace cfs::worker {
namespace {

// The uapi (include/uapi/linux/landlock.h, Linux 6.12), spelt out here: the build
// host's kernel headers may predate the newer rights, the kernel at run time decides.
constexpr std::uint32_t kCreateRulesetVersion = 1U << 0;
constexpr int kRulePathBeneath = 1;
constexpr int kRuleNetPort = 2;
constexpr std::uint64_t kFsReadFile = 1ULL << 2;
constexpr std::uint64_t kFsReadDir = 1ULL << 3;
constexpr std::uint64_t kNetBindTcp = 1ULL << 0;
constexpr std::uint64_t kNetConnectTcp = 1ULL << 1;
constexpr std::uint64_t kScopeAbstractUnixSocket = 1ULL << 0;
constexpr std::uint64_t kScopeSignal = 1ULL << 1;

struct RulesetAttr {
    std::uint64_t handled_access_fs = 0;
    std::uint64_t handled_access_net = 0;  // ABI 4
    std::uint64_t scoped = 0;              // ABI 6
};
struct __attribute__((packed)) PathBeneathAttr {
    std::uint64_t allowed_access;
    std::int32_t parent_fd;
};
struct NetPortAttr {  // ABI 4
    std::uint64_t allowed_access;
    std::uint64_t port;
};

// Every filesystem right the ABI knows: 13 in ABI 1, then REFER (2), TRUNCATE (3),
// IOCTL_DEV (5).
std::uint64_t handled_fs(int abi) {
    if (abi >= 5) return (1ULL << 16) - 1;
    if (abi >= 3) return (1ULL << 15) - 1;
    if (abi == 2) return (1ULL << 14) - 1;
    return (1ULL << 13) - 1;
}

}  // namespace

Result<LandlockOutcome> restrict_to_reading_beneath(std::span<const int> readable_dirs,
                                                    std::optional<std::span<const std::uint16_t>> connect_ports) {
    const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
    if (abi < 0) {
        if (errno == ENOSYS) return LandlockOutcome{0, "this kernel was built without Landlock (ENOSYS)"};
        if (errno == EOPNOTSUPP) return LandlockOutcome{0, "Landlock is disabled at boot (EOPNOTSUPP; see lsm=)"};
        return sys_error("asking the kernel for its Landlock ABI version");
    }
    RulesetAttr attr;
    attr.handled_access_fs = handled_fs(static_cast<int>(abi));
    if (abi >= 4) attr.handled_access_net = kNetBindTcp | kNetConnectTcp;
    if (abi >= 6) attr.scoped = kScopeAbstractUnixSocket | kScopeSignal;
    unique_fd ruleset(static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0)));
    if (!ruleset) return sys_error(fmt::format("creating a Landlock ruleset (ABI {})", abi));

    for (const int dir : readable_dirs) {
        const PathBeneathAttr beneath{kFsReadFile | kFsReadDir, dir};
        if (::syscall(SYS_landlock_add_rule, ruleset.get(), kRulePathBeneath, &beneath, 0) < 0)
            return sys_error("allowing reads beneath a blob directory (Landlock)");
    }
    if (connect_ports && abi >= 4) {
        for (const std::uint16_t allowed : *connect_ports) {
            const NetPortAttr port{kNetConnectTcp, allowed};
            if (::syscall(SYS_landlock_add_rule, ruleset.get(), kRuleNetPort, &port, 0) < 0)
                return sys_error(fmt::format("allowing TCP connect to port {} (Landlock)", allowed));
        }
    }
    if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0) < 0)
        return sys_error("enforcing the Landlock ruleset");
    return LandlockOutcome{static_cast<int>(abi), {}};
}

}  // namespace cfs::worker
