#!/usr/bin/env bash
# Makes the ext4 root image of the systemd test VM from the cached Debian tree
# (build-rootfs.sh) plus what is under test and what runs the test:
#   the freshly built cfsupervisor at the unit's ExecStart path, and its worker at
#     the path compiled into cfsupervisor (CFS_WORKER_INSTALL_PATH), so the installed
#     layout is exercised rather than the "worker next to me" build-tree fallback;
#   units/*.service|socket in /etc/systemd/system (not enabled: scenarios start them
#     once the cache disk is mounted);
#   /etc/cfsupervisor/cfsupervisor.toml for the guest's disks;
#   /usr/lib/cfs-tests: lib.sh, systemd-lib.sh, run-scenario and scenarios/*.sh from
#     systemd-scenarios/, and cfs-scenario.service, enabled, which runs them.
# The image is rebuilt only when one of those inputs changed. QEMU must boot it with
# snapshot=on so that it stays as made. mkfs.ext4 -d needs no root itself, but
# reading the Debian tree (0600 files of root) does.
#
# usage: build-root-image.sh BUILD_DIR ROOTFS_TREE OUT
#   CFS_SUPERVISOR / CFS_WORKER override the binaries' paths in BUILD_DIR.
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 BUILD_DIR ROOTFS_TREE OUT" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
units_dir=$(cd "$here/../../units" && pwd)
build=$1
tree=$(cd "$2" && pwd)
out=$(realpath -m "$3")
sup=${CFS_SUPERVISOR:-$build/supervisor/cfsupervisor}
wrk=${CFS_WORKER:-$build/worker/cfsupervisor-worker}
for b in "$sup" "$wrk"; do
    [[ -x "$b" ]] || { echo "build-root-image: $b does not exist (build the project first)" >&2; exit 1; }
done

# Where the unit starts the supervisor, and where that supervisor looks for its
# worker once installed.
sup_path=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$units_dir/cfsupervisor.service" | head -n1)
[[ "$sup_path" == /* ]] || { echo "build-root-image: no ExecStart path in units/cfsupervisor.service" >&2; exit 1; }
mapfile -t wrk_paths < <(grep -ao '/[[:alnum:]/._-]*/cfsupervisor-worker' "$sup" | sort -u)
if [[ ${#wrk_paths[@]} -ne 1 ]]; then
    echo "build-root-image: expected one worker install path in $sup, found: ${wrk_paths[*]:-none}" >&2
    exit 1
fi
wrk_path=${wrk_paths[0]}

killer=$build/tests/vm/kill_workers
[[ -x "$killer" ]] || { echo "build-root-image: $killer does not exist (build the project first)" >&2; exit 1; }
inputs=("$0" "$sup" "$wrk" "$killer" "$units_dir"/* "$here"/guest/lib.sh "$here"/guest/systemd/*
        "$here"/systemd-scenarios/*.sh "$here"/scenarios/*.inc)
key=$( { echo "$tree $sup_path $wrk_path"; cat "${inputs[@]}"; } | sha256sum | cut -c1-16)
if [[ -f "$out" && "$(cat "$out.key" 2>/dev/null)" == "$key" ]]; then
    echo "build-root-image: $out is up to date ($key)" >&2
    exit 0
fi

# The binaries must find every library in the guest: its libraries are Debian 12's,
# as the host's are (the supported build host), so the host's sonames must exist.
missing=
while read -r soname; do
    found=
    for d in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib64 lib usr/lib; do
        [[ -e "$tree/$d/$soname" || -L "$tree/$d/$soname" ]] && { found=1; break; }
    done
    [[ -n "$found" ]] || missing="$missing $soname"
done < <(for b in "$sup" "$wrk"; do ldd "$b"; done \
         | awk '$2 == "=>" && $3 ~ /^\// { print $1 } $1 ~ /^\// && $2 ~ /^\(/ { n = split($1, p, "/"); print p[n] }' \
         | sort -u)
if [[ -n "$missing" ]]; then
    echo "build-root-image: the Debian tree lacks$missing; add the package to build-rootfs.sh" >&2
    exit 1
fi

t0=$SECONDS
stage="$out.stage"
rm -rf "$stage"
# Hard links make the copy nearly free; everything below only ADDS files (never
# writes into an existing one), so the cached tree is not touched through them.
cp -al "$tree" "$stage" 2>/dev/null || { rm -rf "$stage"; cp -a "$tree" "$stage"; }
trap 'rm -rf "$stage"' EXIT

add() { # MODE SRC DEST: DEST must be new in the stage
    mkdir -p "$stage$(dirname "$3")"
    rm -f "$stage$3"
    install -m "$1" "$2" "$stage$3"
}
add 0755 "$sup" "$sup_path"
add 0755 "$wrk" "$wrk_path"
add 0755 "$killer" /usr/bin/kill_workers
for u in "$units_dir"/*.service "$units_dir"/*.socket; do
    [[ -e "$u" ]] || continue
    add 0644 "$u" "/etc/systemd/system/$(basename "$u")"
done
# The workers' user (workers.user's default): the sysusers.d file where a package
# installs it, applied now (systemd-sysusers.service runs at boot only when /etc
# needs an update). The account files are replaced first, not written through: they
# are hard links into the cached tree.
add 0644 "$units_dir/cfsupervisor.sysusers" /usr/lib/sysusers.d/cfsupervisor.conf
for f in passwd group shadow gshadow; do
    cp -p --remove-destination "$tree/etc/$f" "$stage/etc/$f"
done
systemd-sysusers --root="$stage" "$units_dir/cfsupervisor.sysusers" >&2
# The config for the guest's disks (cache on /dev/vdb at /cache, blobs on the
# read-only data disk /dev/vdc at /data): lib.sh's write_config writes it, so that it
# has the same keys as the initramfs scenarios' config (env -i: with its defaults).
env -i PATH="$PATH" CFS_LIB="$here/guest/lib.sh" OUT="$stage.toml" sh -c '. "$CFS_LIB"; CFS_CONFIG=$OUT; write_config 1'
add 0644 "$stage.toml" /etc/cfsupervisor/cfsupervisor.toml
rm -f "$stage.toml"

t=/usr/lib/cfs-tests
add 0644 "$here/guest/lib.sh" "$t/lib.sh"
add 0644 "$here/guest/systemd/systemd-lib.sh" "$t/systemd-lib.sh"
add 0755 "$here/guest/systemd/run-scenario" "$t/run-scenario"
# *.inc: scenario bodies shared with the initramfs VM (scenarios/), sourced by
# systemd scenarios with the daemon started through its unit instead.
for s in "$here"/systemd-scenarios/*.sh "$here"/scenarios/*.inc; do
    [[ -e "$s" ]] || continue
    add 0755 "$s" "$t/scenarios/$(basename "$s")"
done
add 0644 "$here/guest/systemd/cfs-scenario.service" /etc/systemd/system/cfs-scenario.service
mkdir -p "$stage/etc/systemd/system/multi-user.target.wants" "$stage/cache" "$stage/data" "$stage/mnt"
ln -sfn /etc/systemd/system/cfs-scenario.service \
    "$stage/etc/systemd/system/multi-user.target.wants/cfs-scenario.service"

# 1 GiB, sparse: the tree is ~160 MiB; the rest is room for what scenarios write.
rm -f "$out.tmp" "$out.key"
truncate -s 1G "$out.tmp"
mkfs.ext4 -q -F -t ext4 -L cfsroot -E root_owner=0:0 -d "$stage" "$out.tmp"
mv "$out.tmp" "$out"
echo "$key" > "$out.key"
echo "build-root-image: wrote $out in $((SECONDS - t0))s (supervisor $sup_path, worker $wrk_path)" >&2
