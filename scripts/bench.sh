#!/usr/bin/env bash
# The benchmark (issue 6): builds a release cfsupervisor, boots the test kernel with
# the bench image (bench/make-bench-data.sh, cached) and runs bench/guest/bench.sh in
# the busybox VM and bench/guest/systemd_bench.sh in the systemd VM (its Debian tree
# is the one the test suite caches; building it the first time needs root), then
# prints the table and writes bench/results/latest.{json,png} (bench/report.py).
# Takes about 10 minutes on 2 cores once the kernel is cached; not part of the tests
# (vm_bench_smoke runs it tiny, to see that it still runs).
#
# usage: scripts/bench.sh         (CFS_BENCH_WORKERS="1 2 4", CFS_BENCH_KILLS=50,
#                                  CFS_BENCH_RAND_READS=2000, CFS_BENCH_REPEATS=5
#                                  to change the run;
#                                  CFS_BENCH_READ_AHEAD_KIB=N sets workers.read_ahead_kib;
#                                  CFS_BENCH_HEARTBEAT=1 times the VM's own stalls
#                                  after each kill, which slows the failovers;
#                                  CFS_BENCH_RESTARTS=10, CFS_BENCH_REMOTE_KILLS=20
#                                  for the systemd part)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CFS_BENCH_BUILD_DIR:-$root/build-bench}
vmdir=$build/bench-vm
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr
cmake --build "$build" -j"$(nproc)"
mkdir -p "$vmdir"
ln -sfn "$("$root/tests/vm/build-kernel.sh")" "$vmdir/bzImage"
"$root/tests/vm/build-initramfs.sh" "$build" "$vmdir/initramfs.cpio.gz"
"$root/tests/vm/prepare-systemd.sh" "$vmdir" "$build"
"$root/bench/run.sh" "$vmdir" "$root/bench/results"
