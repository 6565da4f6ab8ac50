#!/usr/bin/env bash
# The benchmark (issue 6): builds a release cfsupervisor, boots the test kernel with
# the bench image (bench/make-bench-data.sh, cached) and runs bench/guest/bench.sh in
# the busybox VM and bench/guest/systemd_bench.sh in the systemd VM (its Debian tree
# is the one the test suite caches; building it the first time needs root), then
# prints the table and writes bench/results/latest.{json,png} (bench/report.py).
# Takes about 4 minutes on 2 cores once the kernel is cached; not part of the tests.
#
# usage: scripts/bench.sh         (CFS_BENCH_WORKERS="1 2 4", CFS_BENCH_KILLS=50,
#                                  CFS_BENCH_RAND_READS=2000, CFS_BENCH_REPEATS=5
#                                  to change the run;
#                                  CFS_BENCH_READ_AHEAD_KIB=N sets workers.read_ahead_kib;
#                                  CFS_BENCH_HEARTBEAT=1 times the VM's own stalls
#                                  after each kill, which slows the failovers)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CFS_BENCH_BUILD_DIR:-$root/build-bench}
vmdir=$build/bench-vm
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr
cmake --build "$build" -j"$(nproc)"
mkdir -p "$vmdir"
ln -sfn "$("$root/tests/vm/build-kernel.sh")" "$vmdir/bzImage"
data=$("$root/bench/make-bench-data.sh")
"$root/tests/vm/build-initramfs.sh" "$build" "$vmdir/initramfs.cpio.gz"
# The guest reads its settings from the kernel command line (guest/init passes
# cfs.env.NAME=VALUE on to the scenario).
env_args=
for v in CFS_BENCH_WORKERS CFS_BENCH_KILLS CFS_BENCH_RAND_READS CFS_BENCH_READ_AHEAD_KIB CFS_BENCH_REPEATS \
    CFS_BENCH_HEARTBEAT; do
    [[ -z "${!v:-}" ]] || env_args+=" cfs.env.$v=${!v// /,}"
done
CFS_DATA_IMG=$data CFS_VM_APPEND=$env_args "$root/tests/vm/run-scenario.sh" bench 3600 "$vmdir"
"$root/tests/vm/prepare-systemd.sh" "$vmdir" "$build"
CFS_DATA_IMG=$data "$root/tests/vm/run-scenario.sh" --systemd systemd_bench 900 "$vmdir"
python3 "$root/bench/report.py" "$root/bench/results" "$vmdir/logs/bench.console.log" \
    "$vmdir/logs/systemd_bench.console.log"
