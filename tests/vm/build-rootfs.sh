#!/usr/bin/env bash
# Builds the root tree of the systemd test VM: Debian 12 (bookworm) minbase with
# systemd as init and the runtime libraries of cfsupervisor, set up to boot fast and
# quietly under TCG. The tree is cached outside the work tree, keyed by this script
# (the package list is part of it), and the path of the tree is printed.
# build-root-image.sh turns it into the VM's ext4 root image.
#
# Needs root (debootstrap chroots, creates device nodes and files of other owners)
# and network access to the Debian mirror this machine's apt already uses.
#
# usage: build-rootfs.sh [CACHE_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${CFS_CACHE_DIR:-$HOME/.cache/cfsupervisor}}
suite=bookworm

# systemd as PID 1 with udev (which applies units/60-cfsupervisor-erofs.rules), plus what `ldd` names for cfsupervisor and cfsupervisor-worker
# (build-root-image.sh checks that again against the binaries it installs), plus
# libcurl4, which workers with blobs.url load at run time (worker/curl_api.h, so ldd
# does not name it), procps for `ps` in failure dumps, nginx-light to serve blobs over
# HTTP on the guest's loopback (systemd_remote_blobs) and docker-registry to serve them
# through the OCI distribution API (systemd_registry_blobs); neither starts at boot.
# The guest scripts need only what minbase has:
# dash, coreutils, util-linux (mount), mawk, sed, grep, findutils, diffutils,
# sysvinit-utils (pidof).
packages=(
    systemd systemd-sysv udev
    libstdc++6 libgcc-s1 libfmt9 libtomlplusplus3 libsystemd0 libcap2 libseccomp2 libcurl4
    procps nginx-light docker-registry
)

# Units that would slow the boot, wait for things the VM does not have (network,
# D-Bus, a VT, a login), prompt on the console, or fire during a test.
masked=(
    serial-getty@ttyS0.service getty@tty1.service getty-static.service
    console-getty.service
    systemd-firstboot.service
    systemd-logind.service
    systemd-networkd.service systemd-networkd-wait-online.service
    systemd-networkd.socket
    apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
    dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer
    systemd-tmpfiles-clean.timer
    ldconfig.service systemd-journal-catalog-update.service systemd-update-done.service
)

key=$(sha256sum < "$0" | cut -c1-16)
out="$cache/rootfs-$key"
if [[ -d "$out" ]]; then echo "$out"; exit 0; fi

[[ $(id -u) -eq 0 ]] || { echo "build-rootfs: must run as root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-rootfs: debootstrap is not installed (scripts/install-deps.sh)" >&2; exit 1; }
. "$here/apt-mirror.sh"
if ! uri=$(debian_mirror); then
    echo "build-rootfs: no Debian archive found in this machine's apt sources" >&2
    exit 1
fi

mkdir -p "$cache"
exec 9> "$cache/rootfs.lock"
flock 9
# Another run may have finished it while we waited for the lock.
if [[ -d "$out" ]]; then echo "$out"; exit 0; fi

work="$out.tmp"
# debootstrap mounts /proc and /sys inside the target while it installs; a run that
# died may have left them, and rm -rf through a mounted sysfs/cgroupfs does damage.
unmount_under() {
    local m
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done < <(awk -v p="$1/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r)
}
cleanup() { unmount_under "$work"; }
trap cleanup EXIT
# Trees of older versions of this script (and their leftovers) are never used again.
for old in "$cache"/rootfs-*; do
    [[ -d "$old" && "$old" != "$out" ]] || continue
    unmount_under "$old"
    rm -rf "$old"
done
mkdir -p "$work" "$cache/debootstrap-debs"

echo "build-rootfs: debootstrap $suite (minbase + ${#packages[@]} packages) into $work" >&2
t0=$SECONDS
include=$(IFS=,; echo "${packages[*]}")
# --cache-dir keeps the .debs, so a change to this script costs only the install.
debootstrap --variant=minbase --components=main --include="$include" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    --cache-dir="$cache/debootstrap-debs" \
    "$suite" "$work" "$uri" 2>&1 | hide_mirror "$uri" >&2
echo "build-rootfs: debootstrap took $((SECONDS - t0))s" >&2
unmount_under "$work"

# No trace of the mirror in what debootstrap wrote (sources.list, list files named
# after it, its log); the VM has no network and needs none of it. Files shipped by
# packages under /usr may name Debian's public hosts; they are not ours to change.
echo "# The cfsupervisor test VM has no network; no apt sources." > "$work/etc/apt/sources.list"
rm -rf "$work"/var/lib/apt/lists/* "$work"/var/cache/apt/*.bin "$work"/var/cache/apt/archives/*.deb \
       "$work"/var/log/bootstrap.log "$work"/debootstrap
host=$(mirror_host "$uri")
if grep -rlIF -- "$host" "$work/etc" "$work/var" > /dev/null 2>&1; then
    echo "build-rootfs: the tree still names the mirror in:" >&2
    grep -rlIF -- "$host" "$work/etc" "$work/var" | sed "s|^$work||" | head -n 5 >&2
    exit 1
fi

# A fixed machine id: an empty one makes systemd treat every boot as the first
# (ConditionFirstBoot units, preset-all enabling every installed unit).
echo "$key$key" > "$work/etc/machine-id"
echo cfsvm > "$work/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tcfsvm\n' > "$work/etc/hosts"
ln -sfn /lib/systemd/system/multi-user.target "$work/etc/systemd/system/default.target"
for u in "${masked[@]}"; do
    ln -sfn /dev/null "$work/etc/systemd/system/$u"
done
# The journal in RAM (the root disk is a throwaway snapshot anyway) and without rate
# limits, so that a failure dump has every line the daemon logged.
mkdir -p "$work/etc/systemd/journald.conf.d"
cat > "$work/etc/systemd/journald.conf.d/cfs-test.conf" <<'EOF'
[Journal]
Storage=volatile
RateLimitIntervalSec=0
RateLimitBurst=0
EOF

# nginx and the registry are started by the scenarios that need them, with their own
# configs.
rm -f "$work/etc/systemd/system/multi-user.target.wants/nginx.service" \
      "$work/etc/systemd/system/multi-user.target.wants/docker-registry.service"

for tool in sh dash sha256sum timeout shuf awk sed grep find cmp diff mount umount pidof ps \
            systemctl journalctl nginx docker-registry; do
    if ! chroot "$work" /bin/sh -c "command -v $tool" > /dev/null; then
        echo "build-rootfs: $tool is missing from the tree" >&2
        exit 1
    fi
done

# Only a complete tree gets the final name, so its existence is the cache hit.
mv "$work" "$out"
echo "build-rootfs: $out ($(du -sh "$out" | cut -f1))" >&2
echo "$out"
