#!/usr/bin/env bash
# What the ctest fixture vm_prepare runs: the kernel (cached outside the build tree
# by build-kernel.sh), the data disk (cached in VM_DIR/data keyed by the script's
# hash) and the initramfs (always rebuilt: it carries the freshly built binaries).
#
# usage: prepare.sh VM_DIR BUILD_DIR
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 VM_DIR BUILD_DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
vmdir=$1
build=$2
mkdir -p "$vmdir"
t0=$SECONDS
kernel=$("$here/build-kernel.sh")
ln -sfn "$kernel" "$vmdir/bzImage"
echo "prepare: kernel $kernel ($((SECONDS - t0))s)"
"$here/make-test-data.sh" "$vmdir/data" > /dev/null
echo "prepare: data disk $vmdir/data/data.img ($((SECONDS - t0))s)"
"$here/build-initramfs.sh" "$build" "$vmdir/initramfs.cpio.gz"
echo "prepare: initramfs $vmdir/initramfs.cpio.gz ($((SECONDS - t0))s)"
