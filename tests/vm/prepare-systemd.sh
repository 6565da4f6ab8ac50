#!/usr/bin/env bash
# What the ctest fixture vm_rootfs runs for the systemd scenarios: the Debian tree
# (cached outside the build tree by build-rootfs.sh; needs root and the network the
# first time) and VM_DIR/rootfs.img made from it with the freshly built binaries
# (build-root-image.sh; skipped when none of its inputs changed). The kernel and the
# data disk come from vm_prepare.
#
# usage: prepare-systemd.sh VM_DIR BUILD_DIR
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 VM_DIR BUILD_DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
vmdir=$1
build=$2
mkdir -p "$vmdir"
t0=$SECONDS
tree=$("$here/build-rootfs.sh")
echo "prepare-systemd: Debian tree $tree ($((SECONDS - t0))s)"
"$here/build-root-image.sh" "$build" "$tree" "$vmdir/rootfs.img"
echo "prepare-systemd: root image $vmdir/rootfs.img ($((SECONDS - t0))s)"
