#!/usr/bin/env bash
# Runs the benchmark in VMs already prepared: bench/guest/bench.sh in the busybox VM,
# then bench/guest/systemd_bench.sh in the systemd VM, both on the bench image
# (bench/make-bench-data.sh, cached), then bench/report.py into OUT_DIR.
# scripts/bench.sh prepares VM_DIR from a release build and calls this; the smoke
# test (tests/vm/bench_smoke.sh) calls it with the test build and a tiny run.
#
# usage: bench/run.sh VM_DIR OUT_DIR
#   VM_DIR holds bzImage, initramfs.cpio.gz and rootfs.img (tests/vm/prepare.sh,
#   prepare-systemd.sh) made from a build with bench/'s cfs-bench-read.
#   CFS_BENCH_* (scripts/bench.sh lists them) go to both guests;
#   CFS_BENCH_VM_LIMIT and CFS_BENCH_SYSTEMD_LIMIT are each part's time limit in
#   seconds (3600 and 900).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 VM_DIR OUT_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
vmdir=$1
out=$2
data=$("$root/bench/make-bench-data.sh")
# The guests read their settings from the kernel command line (cfs.env.NAME=VALUE,
# commas for spaces; guest/init and guest/systemd/run-scenario).
env_args=
for v in CFS_BENCH_WORKERS CFS_BENCH_KILLS CFS_BENCH_RAND_READS CFS_BENCH_READ_AHEAD_KIB CFS_BENCH_REPEATS \
    CFS_BENCH_HEARTBEAT CFS_BENCH_RESTARTS CFS_BENCH_REMOTE_KILLS; do
    [[ -z "${!v:-}" ]] || env_args+=" cfs.env.$v=${!v// /,}"
done
CFS_DATA_IMG=$data CFS_VM_APPEND=$env_args \
    "$root/tests/vm/run-scenario.sh" bench "${CFS_BENCH_VM_LIMIT:-3600}" "$vmdir"
CFS_DATA_IMG=$data CFS_VM_APPEND=$env_args \
    "$root/tests/vm/run-scenario.sh" --systemd systemd_bench "${CFS_BENCH_SYSTEMD_LIMIT:-900}" "$vmdir"
python3 "$root/bench/report.py" "$out" "$vmdir/logs/bench.console.log" "$vmdir/logs/systemd_bench.console.log"
