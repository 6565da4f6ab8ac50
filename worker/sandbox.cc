#include "worker/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/capability.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "common/file_text.h"
#include "common/worker_sandbox.h"
#include "worker/mount_points.h"

namespace cfs::worker {
namespace {

Status set_limits() {
    for (const sandbox::Limit& limit : sandbox::kLimits) {
        rlimit current{};
        if (::getrlimit(limit.resource, &current) < 0) return sys_error(fmt::format("reading {}", limit.name));
        // Never above the hard limit we were given: raising it takes CAP_SYS_RESOURCE,
        // which the unit does not grant.
        const rlim_t value = std::min(limit.value, current.rlim_max);
        const rlimit bounded{value, value};
        if (::setrlimit(limit.resource, &bounded) < 0)
            return sys_error(fmt::format("setting {} to {}", limit.name, value));
    }
    return {};
}

// A read-only, detached clone of a directory's mount. It must be taken in the
// namespace the directory's mount belongs to, that is before unshare. Not recursive:
// mounts beneath the directory stay out.
Result<unique_fd> clone_read_only(int dir, std::string_view what) {
    unique_fd tree(::open_tree(dir, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH));
    if (!tree) return sys_error(fmt::format("cloning {}'s mount (open_tree)", what));
    mount_attr read_only{};
    read_only.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    // Private: a clone keeps the source's propagation, and a mount made later beneath
    // the directory on the host would appear, writable, in a running worker's view.
    read_only.propagation = MS_PRIVATE;
    if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &read_only, sizeof read_only) < 0)
        return sys_error(fmt::format("making {}'s mount read-only", what));
    return tree;
}

// Every mount the new namespace copied from the supervisor's but the root, detached
// (with what is beneath each). None is in the worker's reach once it has its own
// root, but the namespace holds each until the worker dies: an erofs image mounted
// when the worker started stayed mounted in it after the image's umount, and its
// cache object open (the old root's mounts go with pivot_root's detach, but on an
// initramfs, where only chroot works, they all stayed).
Status detach_inherited_mounts() {
    // A host with thousands of mounts writes a few hundred KiB here.
    auto mountinfo = read_file_text("/proc/self/mountinfo", "/proc/self/mountinfo of the new mount namespace",
                                    std::size_t{64} << 20);
    if (!mountinfo) return std::move(mountinfo).error();
    for (const std::string& point : mount_points_below_root(*mountinfo)) {
        // Until it is no mount point: mounts stacked on one path go one at a time,
        // the top first. EINVAL: no (longer a) mount point, maybe detached with one
        // above it; ENOENT: its path went with one above it.
        while (::umount2(point.c_str(), MNT_DETACH) == 0) {
        }
        if (errno != EINVAL && errno != ENOENT)
            return sys_error(fmt::format("detaching {} from the worker's mount namespace", point));
    }
    return {};
}

struct Mounted {
    unique_fd blobs;
    std::vector<unique_fd> volumes;
};

// Steps 3: namespaces and the new root. Returns the fds of the read-only blob mounts.
Result<Mounted> isolate_filesystem(int blob_dir, std::span<const unique_fd> volume_dirs, bool keep_network) {
    auto cloned = clone_read_only(blob_dir, "the blob directory");
    if (!cloned) return std::move(cloned).error();
    Mounted mounted{std::move(*cloned), {}};
    unique_fd& blobs = mounted.blobs;
    // In the order given, an empty fd (a store without a directory) kept empty; the
    // others numbered as they will be mounted (/volumes/N).
    std::size_t numbered = 0;
    for (const unique_fd& dir : volume_dirs) {
        if (!dir) {
            mounted.volumes.emplace_back();
            continue;
        }
        auto volume = clone_read_only(dir.get(), fmt::format("volume directory {}", ++numbered));
        if (!volume) return std::move(volume).error();
        mounted.volumes.push_back(std::move(*volume));
    }

    // One at a time, so that an error names the namespace the kernel lacks.
    for (const sandbox::Namespace& ns : sandbox::kNamespaces) {
        if (keep_network && ns.flag == CLONE_NEWNET) continue;
        if (::unshare(ns.flag) < 0) return sys_error(fmt::format("entering a new {} namespace", ns.name));
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
        return sys_error("making every mount in the new namespace private");
    if (auto detached = detach_inherited_mounts(); !detached) return std::move(detached).error();

    unique_fd context(::fsopen("tmpfs", FSOPEN_CLOEXEC));
    if (!context) return sys_error("creating the worker's root filesystem (tmpfs)");
    // 0755, not 0555: under systemd the worker has no CAP_DAC_OVERRIDE to create
    // /blobs in a directory it cannot write; the mount turns read-only right after.
    if (::fsconfig(context.get(), FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
        ::fsconfig(context.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
        return sys_error("creating the worker's root filesystem (tmpfs)");
    unique_fd root(::fsmount(context.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC));
    if (!root) return sys_error("mounting the worker's root filesystem");
    const std::string mount_point(sandbox::kBlobMountPoint);
    if (::mkdirat(root.get(), mount_point.c_str(), 0555) < 0)
        return sys_error(fmt::format("creating /{} in the worker's root", mount_point));
    // Mounted over /, then made the root: the old tree is gone after pivot_root, and
    // out of reach after chroot.
    if (::move_mount(root.get(), "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return sys_error("mounting the worker's root over /");
    if (::move_mount(blobs.get(), "", root.get(), mount_point.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return sys_error(fmt::format("mounting the blob directory at /{}", mount_point));
    if (std::any_of(mounted.volumes.begin(), mounted.volumes.end(), [](const unique_fd& v) { return v.valid(); })) {
        const std::string volumes_dir(sandbox::kVolumeMountDir);
        // 0755 for the same reason as the root's: its mount points are made in it.
        if (::mkdirat(root.get(), volumes_dir.c_str(), 0755) < 0)
            return sys_error(fmt::format("creating /{} in the worker's root", volumes_dir));
        // Numbered 1, 2, ... among the directories there are.
        std::size_t number = 0;
        for (std::size_t i = 0; i < mounted.volumes.size(); ++i) {
            if (!mounted.volumes[i]) continue;
            const std::string point = fmt::format("{}/{}", volumes_dir, ++number);
            if (::mkdirat(root.get(), point.c_str(), 0555) < 0)
                return sys_error(fmt::format("creating /{} in the worker's root", point));
            if (::move_mount(mounted.volumes[i].get(), "", root.get(), point.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return sys_error(fmt::format("mounting volume directory {} at /{}", number, point));
        }
    }
    mount_attr root_read_only{};
    root_read_only.attr_set = MOUNT_ATTR_RDONLY;
    if (::mount_setattr(root.get(), "", AT_EMPTY_PATH, &root_read_only, sizeof root_read_only) < 0)
        return sys_error("making the worker's root read-only");
    if (::fchdir(root.get()) < 0) return sys_error("entering the worker's root");
    if (::syscall(SYS_pivot_root, ".", ".") == 0) {
        // The old root now sits on top of the new one; detach it and all beneath it.
        if (::umount2(".", MNT_DETACH) < 0) return sys_error("detaching the old root");
    } else if (errno == EINVAL) {
        // The root is the initramfs (rootfs), which pivot_root cannot move. chroot is
        // as good here: without capabilities, and with chroot denied by seccomp, the
        // worker cannot climb back out, and nothing it holds leads outside.
        if (::chroot(".") < 0) return sys_error("changing the root to the worker's (chroot; the root is an initramfs)");
    } else {
        return sys_error("changing the root to the worker's (pivot_root)");
    }
    if (::chdir("/") < 0) return sys_error("entering the worker's root");
    return mounted;
}

struct CapFree {
    void operator()(cap_t c) const { cap_free(c); }
};
using unique_cap = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

// Step 4.
Status become_user(SandboxUser user) {
    if (user.uid == 0 || user.gid == 0)
        return logic_error(fmt::format("refusing to run as uid {} gid {}: a worker's user must not be root",
                                       user.uid, user.gid));
    const cap_value_t cap_count = cap_max_bits();
    for (cap_value_t c = 0; c < cap_count; ++c)
        if (cap_drop_bound(c) < 0) return sys_error(fmt::format("dropping capability {} from the bounding set", c));
    if (cap_reset_ambient() < 0) return sys_error("clearing the ambient capabilities");
    const pid_t supervisor = ::getppid();
    if (::setgroups(0, nullptr) < 0) return sys_error("dropping the supplementary groups");
    if (::setresgid(user.gid, user.gid, user.gid) < 0) return sys_error(fmt::format("switching to gid {}", user.gid));
    if (::setresuid(user.uid, user.uid, user.uid) < 0) return sys_error(fmt::format("switching to uid {}", user.uid));
    // The kernel forgets a parent-death signal when the ids change: set it again, or a
    // worker would outlive its supervisor (main.cc set it at start).
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) return sys_error("asking for SIGKILL when the supervisor dies");
    // A supervisor that died while the signal was unset sent none: this worker would
    // live on, holding the device a new supervisor then cannot open.
    if (::getppid() != supervisor) return logic_error("the supervisor died while this worker switched user");
    // Leaving uid 0 already empties the permitted and effective sets; say so
    // explicitly, the inheritable set included.
    unique_cap none(cap_init());
    if (!none) return sys_error("allocating an empty capability set");
    if (cap_set_proc(none.get()) < 0) return sys_error("clearing every capability");

    // Trust, but verify: what the kernel now holds for us.
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (::getresuid(&ruid, &euid, &suid) < 0 || ::getresgid(&rgid, &egid, &sgid) < 0)
        return sys_error("reading back the worker's ids");
    if (ruid != user.uid || euid != user.uid || suid != user.uid || rgid != user.gid || egid != user.gid ||
        sgid != user.gid)
        return logic_error("the uid or gid switch did not take");
    unique_cap held(cap_get_proc());
    if (!held) return sys_error("reading back the worker's capabilities");
    if (cap_compare(held.get(), none.get()) != 0) return logic_error("a capability survived the switch of user");
    for (cap_value_t c = 0; c < cap_count; ++c)
        if (cap_get_bound(c) != 0) return logic_error(fmt::format("capability {} is still in the bounding set", c));
    // A crash dumps no memory; other processes of this user cannot ptrace us or
    // read our /proc files. Set after the switch, which may reset it.
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return sys_error("making the worker non-dumpable");
    return {};
}

}  // namespace

Result<Sandboxed> enter_sandbox(unique_fd blob_dir, SandboxUser user, const seccomp::Policy& policy,
                                std::optional<NetworkAccess> network, std::vector<unique_fd> volume_dirs) {
    // Compiled first, while failing costs nothing; loaded last.
    auto filter = seccomp::compile(policy, ::getpid());
    if (!filter) return std::move(filter).error();

    if (auto limited = set_limits(); !limited) return std::move(limited).error();
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return sys_error("setting no_new_privs");
    auto mounted = isolate_filesystem(blob_dir.get(), volume_dirs, network.has_value());
    if (!mounted) return std::move(mounted).error();
    blob_dir.reset();
    volume_dirs.clear();
    if (auto dropped = become_user(user); !dropped) return std::move(dropped).error();
    std::vector<int> readable{mounted->blobs.get()};
    for (const unique_fd& volume : mounted->volumes)
        if (volume) readable.push_back(volume.get());
    auto landlock = restrict_to_reading_beneath(
        readable, network ? std::optional<std::span<const std::uint16_t>>(network->connect_ports) : std::nullopt);
    if (!landlock) return std::move(landlock).error();
    if (auto loaded = filter->load(); !loaded) return std::move(loaded).error();
    return Sandboxed{std::move(mounted->blobs), std::move(mounted->volumes), std::move(*landlock)};
}

}  // namespace cfs::worker
