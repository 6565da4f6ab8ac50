// What the worker's sandbox detaches from its new mount namespace (worker/sandbox.cc):
// the mount points of /proc/self/mountinfo but the root.
#include "worker/mount_points.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using cfs::worker::mount_points_below_root;

TEST_CASE("every mount point but the root, a mount before the ones beneath it") {
    // As an initramfs boot of the test VM shows it, shuffled.
    const char* mountinfo =
        "25 16 0:22 / /mnt/bench ro,relatime - erofs none ro,fsid=bench\n"
        "1 1 0:2 / / rw - rootfs rootfs rw\n"
        "17 1 0:5 / /dev rw,relatime - devtmpfs devtmpfs rw\n"
        "16 1 253:0 / /mnt rw,relatime - ext4 /dev/vda rw\n"
        "18 17 0:20 / /dev/pts rw,relatime - devpts devpts rw\n"
        "15 1 0:4 / /proc rw,relatime - proc proc rw\n";
    CHECK(mount_points_below_root(mountinfo) ==
          std::vector<std::string>{"/dev", "/mnt", "/proc", "/dev/pts", "/mnt/bench"});
}

TEST_CASE("mount points are unescaped, listed once, and lines without one skipped") {
    const char* mountinfo =
        "30 1 0:30 / /mnt/with\\040space rw - tmpfs tmpfs rw\n"
        "31 1 0:31 / /mnt/back\\134slash rw - tmpfs tmpfs rw\n"
        "32 1 0:32 / /srv rw - tmpfs tmpfs rw\n"
        "33 32 0:33 / /srv rw - tmpfs tmpfs rw\n"  // stacked on the one before
        "34 1 0:34 / / rw - tmpfs tmpfs rw\n"       // stacked on the root
        "35 1 0:35 /\n"                             // cut short
        "\n"
        "36 1 0:36 / /mnt/odd\\04 rw - tmpfs tmpfs rw";  // no newline at the end
    CHECK(mount_points_below_root(mountinfo) ==
          std::vector<std::string>{"/srv", "/mnt/odd\\04", "/mnt/back\\slash", "/mnt/with space"});
}

TEST_CASE("a namespace with only its root detaches nothing") {
    CHECK(mount_points_below_root("1 1 0:2 / / rw - rootfs rootfs rw\n").empty());
    CHECK(mount_points_below_root("").empty());
}
