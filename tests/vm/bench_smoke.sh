#!/usr/bin/env bash
# vm_bench_smoke: the benchmark (scripts/bench.sh) still runs end to end, made tiny:
# 1 worker, one round of each read, 50 random reads, 2 worker kills, 1 supervisor
# restart, 2 kills on the remote blob. It judges no figure (the benchmark is read,
# never asserted; docs/benchmarks.md); it checks that every workload was measured
# and reported: the busybox guest fails when the big file read through the daemon
# has the wrong SHA-256, either guest when a read fails, and this script when a
# workload, a summary or the plot is missing from bench/report.py's output.
#
# usage: bench_smoke.sh VM_DIR     (after vm_prepare and vm_rootfs)
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 VM_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
vmdir=$1
out=$vmdir/bench-smoke
rm -rf "$out"
mkdir -p "$vmdir/logs"
CFS_BENCH_WORKERS=1 CFS_BENCH_REPEATS=1 CFS_BENCH_RAND_READS=50 CFS_BENCH_KILLS=2 \
    CFS_BENCH_RESTARTS=1 CFS_BENCH_REMOTE_KILLS=2 CFS_BENCH_VM_LIMIT=480 CFS_BENCH_SYSTEMD_LIMIT=360 \
    "$root/bench/run.sh" "$vmdir" "$out" | tee "$vmdir/logs/bench_smoke.report.txt"
python3 - "$out" <<'PYEOF'
import json, os, sys
out = sys.argv[1]
with open(os.path.join(out, "latest.json")) as f:
    result = json.load(f)
figs = {(f["workload"], f["workers"]): f for f in result["figures"]}
wanted = [("blob_file", 0), ("blob_file_direct_io", 0), ("copy_pread", 0), ("copy_willneed", 0),
          ("copy_direct", 0), ("copy_alone", 0), ("copy_beside_warm", 0),
          ("cold_seq", 0), ("cold_rand", 0), ("cold_small", 0),
          ("cold_seq", 1), ("warm_seq", 1), ("warm_seq_beside_copy", 1), ("cold_rand", 1), ("cold_small", 1),
          ("warm_small", 1), ("cold_seq_per_read", 1), ("cold_small_per_read", 1), ("cold_seq_kernel_ra", 1),
          ("cold_seq_apart", 1), ("remote_cold_seq", 1), ("remote_cold_small", 1), ("remote_cold_seq_chunks", 1)]
problems = [f"no figure for {w} with {n} worker(s)" for w, n in wanted if not figs.get((w, n), {}).get("rate")]
def need(ok, what):
    if not ok:
        problems.append(what)
cold = figs.get(("cold_seq", 1), {})
need("ratio_to_blob_file" in cold, "cold_seq has no ratio to the direct read")
need("ratio_to_warm" in cold, "cold_seq has no ratio to warm_seq")
need("ratio_to_warm" in figs.get(("cold_small", 1), {}), "cold_small has no ratio to warm_small")
need("daemon_cpu_ms_per_mib" in cold, "cold_seq has no CPU time per MiB")
speedups = result["speedup_over_per_read"]
need(speedups.get("cold_small_rounds") and len(speedups["cold_small_rounds"]) == 1,
     f"cold_small's speedup not from its one round: {speedups}")
need("cold_seq" in speedups, "no cold_seq speedup over answering each READ as it comes")
need(result["failover"].get("kills") == 2, f"failover: {result['failover']}")
need("p99_in_cold_read_round_trips" in result["failover"], "failover p99 not in cold READ round trips")
need(result["remote_failover"].get("kills") == 2, f"remote failover: {result['remote_failover']}")
need(result["supervisor_restart"].get("restarts") == 1, f"supervisor restart: {result['supervisor_restart']}")
need(any(r["workers"] == 1 and r["supervisor_kib"] > 0 and r["worker_kib"] > 0 for r in result["peak_rss"]),
     f"peak RSS: {result['peak_rss']}")
png = os.path.join(out, "latest.png")
need(os.path.isfile(png) and os.path.getsize(png) > 0, "no plot latest.png")
if problems:
    sys.exit("bench smoke: " + "; ".join(problems))
print(f"bench smoke: {len(wanted)} workloads measured and reported, failovers, restart, RSS and plot present")
PYEOF
