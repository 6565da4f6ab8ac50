#!/usr/bin/env bash
# Profiles the daemon's sequential reads in the test VM with perf (issue 6: profile
# first): builds a release cfsupervisor, a test kernel with perf events (the test
# kernel's config plus bench/profile/kernel-perf.config, cached under a key of its
# own), an initramfs with the host's perf in it, and runs bench/guest/profile.sh on
# the bench image. Prints, for the blob file's direct read, cold_seq and warm_seq,
# the samples of every process and of every symbol with 0.5% or more. About 6
# minutes on 2 cores the first time (the kernel), 1 to 2 after. Not part of the tests.
#
# usage: scripts/profile.sh        (CFS_PROFILE_WORKERS="1 2", CFS_PROFILE_ROUNDS=3)
# needs: linux-perf (apt-get install linux-perf)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
perf=$(command -v perf) || { echo "profile: no perf on this machine (apt-get install linux-perf)" >&2; exit 1; }
build=${CFS_BENCH_BUILD_DIR:-$root/build-bench}
vmdir=$build/profile-vm
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr
cmake --build "$build" -j"$(nproc)"
mkdir -p "$vmdir"
# build-kernel.sh keys its cache by its config fragment: a copy of it beside the
# merged fragment builds (once) and caches the perf kernel apart from the test kernel.
kernel_dir=$(mktemp -d)
trap 'rm -rf "$kernel_dir"' EXIT
cp "$root/tests/vm/build-kernel.sh" "$root/tests/vm/fetch-kernel-source.sh" "$root/tests/vm/apt-mirror.sh" "$kernel_dir/"
cat "$root/tests/vm/kernel.config" "$root/bench/profile/kernel-perf.config" > "$kernel_dir/kernel.config"
ln -sfn "$("$kernel_dir/build-kernel.sh")" "$vmdir/bzImage"
data=$("$root/bench/make-bench-data.sh")
CFS_INITRAMFS_EXTRA_BINS=$perf "$root/tests/vm/build-initramfs.sh" "$build" "$vmdir/initramfs.cpio.gz"
env_args=
for v in CFS_PROFILE_WORKERS CFS_PROFILE_ROUNDS; do
    [[ -z "${!v:-}" ]] || env_args+=" cfs.env.$v=${!v// /,}"
done
CFS_DATA_IMG=$data CFS_VM_APPEND=$env_args "$root/tests/vm/run-scenario.sh" profile 900 "$vmdir" \
    > "$vmdir/run.log" || { tail -n 40 "$vmdir/run.log"; exit 1; }
tr -d '\r' < "$vmdir/logs/profile.console.log" | grep -a -E '^PROFILE |: \{"bytes"'
