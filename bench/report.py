#!/usr/bin/env python3
"""Turns the benchmark's "BENCH: {json}" console lines (bench/guest/bench.sh) into
a table on stdout, OUT_DIR/latest.json and OUT_DIR/latest.png (gnuplot).

Every byte throughput is given as a ratio to the direct read: the blob file read
sequentially from the same disk in the same run (the limit for this VM; issue 6's
targets are in these terms; a sequential read of the daemon is compared with the
direct read measured right before it, and the median of those ratios is given), and
as a ratio to the same workload on a loop device
over the blob (no daemon; the kernel's own cost of an erofs read). Figures from
different runs or machines are not comparable; ratios within one run are.

Rows named remote_* (bench/guest/systemd_bench.sh) carry the same workload on the
local blob, measured in the same VM and run, and are given as a ratio to it.

usage: report.py OUT_DIR CONSOLE_LOG...
  (one run's logs: bench.console.log and systemd_bench.console.log; the rounds and
  medians of two runs of bench.sh would mix)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

MIB = 1 << 20
TICK_S = 0.01  # /proc/<pid>/stat counts in 1/100 s (USER_HZ)


# Copies with no daemon, measured beside the direct read; and the blob file read
# with direct I/O, the disk without the page cache.
DIRECT_COPIES = ("copy_pread", "copy_willneed", "copy_direct", "copy_beside_warm", "copy_alone",
                 "blob_file_direct_io")
# The daemon's sequential reads, each round of them started with a direct read
# (bench.sh paired_measure).
PAIRED = ("cold_seq", "warm_seq", "cold_seq_per_read", "cold_seq_kernel_ra", "cold_seq_apart")


def parse(log_paths):
    rows = []
    for log_path in log_paths:
        found = 0
        with open(log_path, "rb") as f:
            for raw in f:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith("BENCH: "):
                    rows.append(json.loads(line[len("BENCH: "):]))
                    found += 1
        if not found:
            sys.exit(f"report: no BENCH lines in {log_path} (did that part of the benchmark run?)")
    return rows


def percentile(values, p):
    v = sorted(values)
    if not v:
        return None
    return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]


def rate_of(res):
    """(rate, unit) of one reader's result: files/s for a tree, MiB/s otherwise."""
    if "files" in res:
        return res["files"] / res["seconds"], "files/s"
    return res["bytes"] / MIB / res["seconds"], "MiB/s"


def medians(rows):
    """A workload measured several times (bench.sh repeats the sequential ones, which
    move by 20 to 50% from one measurement to the next in this VM) stands for its
    median measurement, in the place of its first; `runs` has all its times."""
    groups = {}
    for r in rows:
        if "result" in r and "seconds" in r["result"]:
            groups.setdefault((r["workload"], r["workers"]), []).append(r)
    out = []
    for r in rows:
        group = groups.get((r.get("workload"), r.get("workers")))
        if group is None:
            out.append(r)
        elif group[0] is r:
            chosen = dict(sorted(group, key=lambda g: g["result"]["seconds"])[(len(group) - 1) // 2])
            chosen["runs"] = [g["result"]["seconds"] for g in group]
            out.append(chosen)
    return out


def paired_ratios(rows):
    """{(workload, workers): [ratio, ...]}: each of the daemon's sequential reads over
    the direct read measured last before it. This VM's reads speed up and slow down
    by half within one boot, the daemon's with the direct read's; a ratio of two
    measurements taken close together leaves most of that out."""
    ratios = {}
    direct = None
    for r in rows:
        if r.get("workload") == "blob_file":
            direct = rate_of(r["result"])[0]
        elif r.get("workload") in PAIRED and r.get("workers", 0) > 0 and direct:
            ratios.setdefault((r["workload"], r["workers"]), []).append(rate_of(r["result"])[0] / direct)
    return ratios


def round_ratios(rows, numerator, denominator):
    """{workers: [ratio, ...]}: in each round (bench.sh marks a round's measurements
    with the same "round"), the `numerator`'s rate over the `denominator`'s with as
    many workers (cold_seq over warm_seq; cold_small over warm_small and over
    cold_small_per_read). Two measurements taken close together leave out most of
    this VM's drift within a boot."""
    numerators = {}
    for r in rows:
        if r.get("workload") == numerator and "round" in r:
            numerators[(r["round"], r["workers"])] = rate_of(r["result"])[0]
    ratios = {}
    for r in rows:
        key = (r.get("round"), r.get("workers"))
        if r.get("workload") == denominator and key in numerators:
            ratios.setdefault(r["workers"], []).append(numerators[key] / rate_of(r["result"])[0])
    return ratios


def speedups_over_per_read(rows, figs):
    """Issue 6's "faster than answering each READ as it comes", 1 worker: for a
    workload measured in rounds with its _per_read (cold_small), the median of the
    rounds' ratios (and `W_rounds`, each); otherwise the ratio of the two medians."""
    speedups = {}
    for w in ("cold_seq", "cold_small"):
        rounds = round_ratios(rows, w, w + "_per_read").get(1, [])
        with_ahead = next((f["rate"] for f in figs if f["workload"] == w and f["workers"] == 1), None)
        per_read = next((f["rate"] for f in figs if f["workload"] == w + "_per_read"), None)
        if rounds:
            speedups[w] = statistics.median(rounds)
            speedups[w + "_rounds"] = rounds
        elif with_ahead and per_read:
            speedups[w] = with_ahead / per_read
    return speedups


def figures(rows):
    """One record per measured workload, with its rate and ratio to direct."""
    out = []
    direct = {}
    for r in medians(rows):
        w = r["workload"]
        if w in ("peak_rss", "failover", "remote_failover", "supervisor_restart", "settings"):
            continue
        res = r["result"]
        rec = {"workload": w, "workers": r["workers"], "seconds": res["seconds"], "runs": r.get("runs", [res["seconds"]])}
        rec["rate"], rec["unit"] = rate_of(res)
        rec["files_per_s" if rec["unit"] == "files/s" else "mib_per_s"] = rec["rate"]
        if "local" in r:
            local = r["local"]
            rec["local_rate"], _ = rate_of(local["result"])
            rec["ratio_to_local"] = rec["rate"] / rec["local_rate"]
            rec["local_daemon_cpu_ms_per_mib"] = local["daemon_cpu_ticks"] * TICK_S * 1000 / (
                local["result"]["bytes"] / MIB)
        if "p50_us" in res:
            rec["p50_us"], rec["p99_us"] = res["p50_us"], res["p99_us"]
        if r["workers"] > 0:
            rec["daemon_cpu_ms_per_mib"] = r["daemon_cpu_ticks"] * TICK_S * 1000 / (res["bytes"] / MIB)
        else:
            direct[w] = rec["rate"]
        out.append(rec)
    blob = direct.get("blob_file")
    disk = direct.get("blob_file_direct_io")
    paired = paired_ratios(rows)
    # The daemon's own share of a cold read: each cold read over the warm re-read of
    # the same data (from the cache files) in the same round, the ceiling a daemon
    # can approach.
    of_warm = {"cold_seq": round_ratios(rows, "cold_seq", "warm_seq"),
               "cold_small": round_ratios(rows, "cold_small", "warm_small")}
    for rec in out:
        pairs = paired.get((rec["workload"], rec["workers"]))
        if pairs:
            rec["ratio_to_blob_file"] = statistics.median(pairs)
            rec["ratios_to_blob_file"] = pairs
        elif blob and rec["workload"] in PAIRED + ("warm_seq_beside_copy",) + DIRECT_COPIES:
            rec["ratio_to_blob_file"] = rec["mib_per_s"] / blob
        if disk and rec["workers"] > 0 and rec["workload"] in PAIRED:
            rec["ratio_to_disk"] = rec["rate"] / disk
        warm = of_warm.get(rec["workload"], {}).get(rec["workers"])
        if warm:
            rec["ratio_to_warm"] = statistics.median(warm)
            rec["ratios_to_warm"] = warm
        same_on_loop = {"warm_seq": "cold_seq", "cold_seq_per_read": "cold_seq", "cold_seq_kernel_ra": "cold_seq",
                        "cold_seq_apart": "cold_seq",
                        "warm_small": "cold_small", "cold_small_per_read": "cold_small"}
        loop = direct.get(same_on_loop.get(rec["workload"], rec["workload"]))
        if rec["workers"] > 0 and loop:
            rec["ratio_to_loop"] = rec["rate"] / loop
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    rows = parse(sys.argv[2:])
    figs = figures(rows)
    rss = [r for r in rows if r["workload"] == "peak_rss"]
    failover = next((r for r in rows if r["workload"] == "failover"), None)

    settings = next((r for r in rows if r["workload"] == "settings"), None)
    if settings:
        print(f"workers.read_ahead_kib: {settings['read_ahead_kib']}; mounts and disks read ahead "
              f"{settings.get('mount_read_ahead_kib', 128)} KiB (units/60-cfsupervisor-erofs.rules)")
    print("A workload measured more than once shows its median measurement and, last, how many; "
          "the daemon's sequential reads, the median of their ratios to the direct read measured "
          "right before each.")
    print(f"{'workload':<11} {'workers':>7} {'rate':>16} {'/blob file':>10} {'/loop':>6} {'p50 us':>7} "
          f"{'p99 us':>7} {'cpu ms/MiB':>10}")
    for f in figs:
        if "ratio_to_local" in f:
            continue
        who = "loop" if f["workers"] == 0 else str(f["workers"])
        if f["workload"] in ("blob_file",) + DIRECT_COPIES:
            who = "direct"
        blob = f"{f['ratio_to_blob_file']:.2f}" if "ratio_to_blob_file" in f else ""
        loop = f"{f['ratio_to_loop']:.2f}" if "ratio_to_loop" in f else ""
        p50 = f"{f['p50_us']:.0f}" if "p50_us" in f else ""
        p99 = f"{f['p99_us']:.0f}" if "p99_us" in f else ""
        cpu = f"{f['daemon_cpu_ms_per_mib']:.1f}" if "daemon_cpu_ms_per_mib" in f else ""
        runs = f"  (median of {len(f['runs'])})" if len(f["runs"]) > 1 else ""
        print(f"{f['workload']:<11} {who:>7} {f['rate']:>8.1f} {f['unit']:<7} {blob:>10} {loop:>6} {p50:>7} {p99:>7} "
              f"{cpu:>10}{runs}")
    remote = [f for f in figs if "ratio_to_local" in f]
    if remote:
        print("remote blobs (systemd VM, nginx on the guest's loopback, 1 worker), "
              "as a ratio to the local blob in the same run:")
        print(f"{'workload':<22} {'local':>16} {'remote':>16} {'/local':>6} {'cpu ms/MiB':>10} {'(local)':>8}")
        for f in remote:
            print(f"{f['workload']:<22} {f['local_rate']:>8.1f} {f['unit']:<7} {f['rate']:>8.1f} {f['unit']:<7} "
                  f"{f['ratio_to_local']:>6.2f} {f['daemon_cpu_ms_per_mib']:>10.1f} "
                  f"{f['local_daemon_cpu_ms_per_mib']:>8.1f}")
    for cold, warm in (("cold_seq", "warm_seq"), ("cold_small", "warm_small")):
        of_warm = [f for f in figs if f["workload"] == cold and "ratio_to_warm" in f]
        if of_warm:
            print(f"{cold} of the {warm} of the same round (the daemon's share; the warm re-read is its ceiling): "
                  + ", ".join(f"{f['ratio_to_warm']:.2f} with {f['workers']} worker(s)" for f in of_warm))
    of_disk = [f for f in figs if f["workload"] == "cold_seq" and "ratio_to_disk" in f]
    if of_disk:
        print("cold_seq of the blob file read with direct I/O (the disk without the page cache): "
              + ", ".join(f"{f['ratio_to_disk']:.2f} with {f['workers']} worker(s)" for f in of_disk))
    speedups = speedups_over_per_read(rows, figs)
    for w in ("cold_seq", "cold_small"):
        if w in speedups:
            rounds = speedups.get(w + "_rounds")
            how = (f" (the median of {len(rounds)} rounds, each measuring both: "
                   + ", ".join(f"{x:.1f}" for x in rounds) + ")") if rounds else ""
            print(f"{w}, 1 worker: {speedups[w]:.1f}x the rate of answering each READ as it comes{how}")
    by_workers_1 = {f["workload"]: f for f in figs if f["workers"] == 1}
    mount_ra = {}
    if "cold_seq" in by_workers_1 and "cold_seq_kernel_ra" in by_workers_1:
        with_rule, kernel = by_workers_1["cold_seq"]["rate"], by_workers_1["cold_seq_kernel_ra"]["rate"]
        mount_ra = {"with_rule_mib_per_s": with_rule, "kernel_default_mib_per_s": kernel, "gain": with_rule / kernel}
        print(f"cold_seq, 1 worker: {with_rule:.1f} MiB/s with the udev rule's mount read-ahead, "
              f"{kernel:.1f} MiB/s with the kernel's 128 KiB ({with_rule / kernel:.2f}x)")
    overlap = {}
    by_name = {f["workload"]: f for f in figs if f["workers"] in (0, 1)}
    if all(w in by_name for w in ("warm_seq", "warm_seq_beside_copy", "copy_beside_warm", "copy_alone")):
        alone = by_name["warm_seq"]["seconds"] + by_name["copy_alone"]["seconds"]
        together = max(by_name["warm_seq_beside_copy"]["seconds"], by_name["copy_beside_warm"]["seconds"])
        overlap = {"alone_s": alone, "together_s": together}
        print(f"two streams in this VM: warm_seq {by_name['warm_seq']['seconds']:.2f} s and a 128 MiB copy "
              f"{by_name['copy_alone']['seconds']:.2f} s alone, {alone:.2f} s one after the other; "
              f"{together:.2f} s side by side (a VM that ran them at once: {max(by_name['warm_seq']['seconds'], by_name['copy_alone']['seconds']):.2f} s)")
    for r in rss:
        print(f"peak RSS with {r['workers']} worker(s): supervisor {r['supervisor_kib'] / 1024:.1f} MiB, "
              f"largest worker {r['worker_kib'] / 1024:.1f} MiB")
    summary = failover_summary(failover, next(
        (f["p50_us"] for f in figs if f["workload"] == "cold_rand" and f["workers"] == 1), None)) if failover else {}
    if summary:
        rt = f", p99 = {summary['p99_in_cold_read_round_trips']:.1f} cold READ round trips" \
            if "p99_in_cold_read_round_trips" in summary else ""
        print(f"failover recovery over {summary['kills']} worker kills: p50 {summary['p50_ms']} ms, "
              f"p99 {summary['p99_ms']} ms{rt}")
        if "restore_p50_ms" in summary:
            print(f"  of which death to restore written: p50 {summary['restore_p50_ms']} ms, "
                  f"p99 {summary['restore_p99_ms']} ms")
        if "stalled_read_p50_ms" in summary:
            in_rt = f" ({summary['stalled_read_p99_in_cold_read_round_trips']:.1f} cold READ round trips)" \
                if "stalled_read_p99_in_cold_read_round_trips" in summary else ""
            print(f"  as the reader saw it, its longest read in the 500 ms after each kill(): "
                  f"p50 {summary['stalled_read_p50_ms']:.1f} ms, p99 {summary['stalled_read_p99_ms']:.1f} ms{in_rt}")
        if "first_read_without_query" in summary:
            print(f"  first READ answered without an ObjectQuery (the spare held the object): "
                  f"{summary['first_read_without_query']} of {len(failover['queries'])}")
        if "vcpu_gap_p50_ms" in summary:
            print(f"  the VM's own stall, the longest time a vCPU ran no user space in the 500 ms after each "
                  f"kill(): p50 {summary['vcpu_gap_p50_ms']:.1f} ms, p99 {summary['vcpu_gap_p99_ms']:.1f} ms")
        for k in summary.get("slowest", []):
            reader = f", the reader's read {k['stalled_read_ms']:.1f} ms" if "stalled_read_ms" in k else ""
            gap = f", a vCPU away {k['vcpu_gap_ms']:.1f} ms" if "vcpu_gap_ms" in k else ""
            print(f"  kill {k['kill']}: recovery {k['recovery_ms']} ms{reader}{gap}")

    remote_failover = next((r for r in rows if r["workload"] == "remote_failover"), None)
    remote_failover_summary = {}
    if remote_failover:
        # No cold_rand of the remote blob: its figures stay in ms.
        remote_failover_summary = failover_summary(remote_failover, None)
        remote_failover_summary["head_requests"] = remote_failover["heads"]
        print(f"failover on the remote blob (systemd VM, nginx) over {remote_failover_summary['kills']} worker kills: "
              f"p50 {remote_failover_summary['p50_ms']} ms, p99 {remote_failover_summary['p99_ms']} ms; "
              f"HEAD requests nginx saw during them: {remote_failover['heads']}")
        if "stalled_read_p50_ms" in remote_failover_summary:
            print(f"  as the reader saw it, its longest read in the 500 ms after each kill(): "
                  f"p50 {remote_failover_summary['stalled_read_p50_ms']:.1f} ms, "
                  f"p99 {remote_failover_summary['stalled_read_p99_ms']:.1f} ms")

    restart = next((r for r in rows if r["workload"] == "supervisor_restart"), None)
    restart_summary = {}
    if restart:
        ms = restart["longest_read_ms"]
        restart_summary = {"restarts": len(ms), "p50_ms": percentile(ms, 0.5), "p99_ms": percentile(ms, 0.99)}
        print(f"supervisor restart (systemctl kill -s KILL) over {len(ms)} restarts, a reader's longest read: "
              f"p50 {restart_summary['p50_ms']} ms, p99 {restart_summary['p99_ms']} ms")

    os.makedirs(out_dir, exist_ok=True)
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "figures": figs,
              "peak_rss": rss, "speedup_over_per_read": speedups, "mount_read_ahead": mount_ra,
              "two_streams": overlap, "failover": summary, "remote_failover": remote_failover_summary,
              "supervisor_restart": restart_summary, "raw": rows}
    with open(os.path.join(out_dir, "latest.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {os.path.join(out_dir, 'latest.json')}")
    plot(figs, os.path.join(out_dir, "latest.png"))


def failover_summary(failover, cold_rt_us):
    """The failover row's figures: recovery as the supervisor logged it (death noticed
    to the first READ answered), its restore part, the reader's view (its longest
    read after each kill), p99s also in cold READ round trips (the p50 of cold_rand,
    1 worker, `cold_rt_us`)."""
    ms = failover["recovery_ms"]
    summary = {"kills": len(ms), "p50_ms": percentile(ms, 0.5), "p99_ms": percentile(ms, 0.99),
               "max_ms": max(ms) if ms else None}
    if cold_rt_us and summary["p99_ms"] is not None:
        summary["p99_in_cold_read_round_trips"] = summary["p99_ms"] * 1000 / cold_rt_us
    restore = failover.get("restore_ms", [])
    if restore:
        summary["restore_p50_ms"] = percentile(restore, 0.5)
        summary["restore_p99_ms"] = percentile(restore, 0.99)
    stalled = [us / 1000 for us in failover.get("stalled_read_us", [])]
    if stalled:
        summary["stalled_read_p50_ms"] = percentile(stalled, 0.5)
        summary["stalled_read_p99_ms"] = percentile(stalled, 0.99)
        if cold_rt_us:
            summary["stalled_read_p99_in_cold_read_round_trips"] = summary["stalled_read_p99_ms"] * 1000 / cold_rt_us
    queries = failover.get("queries", [])
    if queries:
        summary["first_read_without_query"] = sum(1 for q in queries if q == 0)
    gaps = [us / 1000 for us in failover.get("vcpu_gap_us", [])]
    if gaps:
        # The VM's own stall after each kill (bench.sh's heartbeats, CFS_BENCH_HEARTBEAT=1):
        # the longest time a vCPU ran none of the guest's user space. A slow failover
        # with a stall as long beside it was the VM's, not the daemon's.
        summary["vcpu_gap_p50_ms"] = percentile(gaps, 0.5)
        summary["vcpu_gap_p99_ms"] = percentile(gaps, 0.99)
    # The kills that make the p99, with whatever else was measured of each beside them.
    slowest = sorted(range(len(ms)), key=lambda i: ms[i], reverse=True)[:3]
    summary["slowest"] = [{"kill": i, "recovery_ms": ms[i],
                           **({"stalled_read_ms": stalled[i]} if len(stalled) == len(ms) else {}),
                           **({"vcpu_gap_ms": gaps[i]} if len(gaps) == len(ms) else {})}
                          for i in slowest]
    return summary


def plot(figs, png):
    if shutil.which("gnuplot") is None:
        print("no gnuplot (apt-get install gnuplot-nox): no plot")
        return
    workloads = [w for w in ("cold_seq", "warm_seq", "cold_rand", "cold_small")
                 if any(f["workload"] == w for f in figs)]
    counts = sorted({f["workers"] for f in figs if f["workers"] > 0})
    data = png + ".dat"
    with open(data, "w") as d:
        d.write("# workload " + " ".join(f"w{c}" for c in counts) + "\n")
        for w in workloads:
            vals = []
            for c in counts:
                r = next((f.get("ratio_to_loop") for f in figs if f["workload"] == w and f["workers"] == c), None)
                vals.append(f"{r:.3f}" if r is not None else "0")
            d.write(w + " " + " ".join(vals) + "\n")
    items = [f"'{data}' using 2:xtic(1) title '{counts[0]} worker(s)'"]
    items += [f"'' using {i + 2} title '{c} worker(s)'" for i, c in enumerate(counts) if i > 0]
    script = f"""
set terminal pngcairo size 900,500 noenhanced
set output '{png}'
set title 'cfsupervisor: throughput as a ratio to the same read from a loop device over the blob (1.0)'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set ylabel 'ratio to the loop device'
set grid ytics
plot {", ".join(items)}
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)
    os.remove(data)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
