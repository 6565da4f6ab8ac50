#!/usr/bin/env python3
"""bench/report.py's ratios: each of the daemon's sequential reads over the direct
read measured right before it, cold_seq over the warm_seq of its round, and the
run's median direct read where no direct read came before.

usage: bench_report_test.py PATH/TO/bench/report.py
"""
import importlib.util
import sys
import unittest

MIB = 1 << 20


def load_report(path):
    spec = importlib.util.spec_from_file_location("report", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(workload, workers, seconds, mib=256, round=None):
    r = {"workload": workload, "workers": workers, "daemon_cpu_ticks": 0,
         "result": {"bytes": mib * MIB, "seconds": seconds}}
    if round is not None:
        r["round"] = round
    return r


class PairedRatios(unittest.TestCase):
    def test_each_read_is_compared_with_the_direct_read_right_before_it(self):
        # A fast phase (direct 256 MiB/s) and a slow one (128 MiB/s): the daemon
        # read half as fast as the direct read in both.
        rows = [row("blob_file", 0, 1.0), row("cold_seq", 1, 2.0), row("warm_seq", 1, 1.0),
                row("blob_file", 0, 2.0), row("cold_seq", 1, 4.0), row("warm_seq", 1, 2.0)]
        ratios = report.paired_ratios(rows)
        self.assertEqual(ratios[("cold_seq", 1)], [0.5, 0.5])
        self.assertEqual(ratios[("warm_seq", 1)], [1.0, 1.0])
        figs = {(f["workload"], f["workers"]): f for f in report.figures(rows)}
        self.assertEqual(figs[("cold_seq", 1)]["ratio_to_blob_file"], 0.5)
        self.assertEqual(figs[("cold_seq", 1)]["ratios_to_blob_file"], [0.5, 0.5])
        # Against the run's median direct read instead, the ratios would be 2/3 and
        # 1/3: the drift, not the daemon.

    def test_the_ratio_is_the_median_of_the_pairs(self):
        rows = [row("blob_file", 0, 1.0), row("cold_seq", 2, 1.25),
                row("blob_file", 0, 1.0), row("cold_seq", 2, 2.0),
                row("blob_file", 0, 1.0), row("cold_seq", 2, 1.0)]
        figs = {(f["workload"], f["workers"]): f for f in report.figures(rows)}
        self.assertEqual([round(r, 9) for r in figs[("cold_seq", 2)]["ratios_to_blob_file"]], [0.8, 0.5, 1.0])
        self.assertAlmostEqual(figs[("cold_seq", 2)]["ratio_to_blob_file"], 0.8)

    def test_reads_without_a_direct_read_before_them_use_the_runs_median(self):
        rows = [row("copy_direct", 0, 0.5), row("blob_file", 0, 1.0), row("blob_file", 0, 3.0),
                row("blob_file", 0, 2.0)]
        figs = {(f["workload"], f["workers"]): f for f in report.figures(rows)}
        # The median direct read took 2 s: 128 MiB/s; the copy 512 MiB/s.
        self.assertEqual(figs[("copy_direct", 0)]["ratio_to_blob_file"], 4.0)
        self.assertNotIn("ratios_to_blob_file", figs[("copy_direct", 0)])

    def test_the_direct_reads_of_the_loop_device_are_not_paired(self):
        rows = [row("blob_file", 0, 1.0), row("cold_seq", 0, 4.0)]
        self.assertEqual(report.paired_ratios(rows), {})


class Figures(unittest.TestCase):
    def test_rows_without_a_reader_result_are_left_to_their_own_summaries(self):
        rows = [row("blob_file", 0, 1.0),
                {"workload": "failover", "workers": 1, "recovery_ms": [5, 7], "restore_ms": [0, 1], "queries": [0, 0]},
                {"workload": "remote_failover", "workers": 1, "recovery_ms": [30, 33], "heads": 0},
                {"workload": "peak_rss", "workers": 1, "supervisor_kib": 2700, "worker_kib": 5900}]
        self.assertEqual([f["workload"] for f in report.figures(rows)], ["blob_file"])


class Failover(unittest.TestCase):
    def test_the_supervisors_and_the_readers_figures_in_cold_read_round_trips(self):
        failover = {"workload": "failover", "workers": 1, "recovery_ms": [2.0, 3.0, 4.0, 9.5],
                    "restore_ms": [0.1, 0.2, 0.2, 0.3], "queries": [0, 0, 1, 0],
                    "stalled_read_us": [3000.0, 5000.0, 4000.0, 12000.0]}
        s = report.failover_summary(failover, 1000.0)
        self.assertEqual((s["kills"], s["p50_ms"], s["p99_ms"], s["max_ms"]), (4, 4.0, 9.5, 9.5))
        self.assertAlmostEqual(s["p99_in_cold_read_round_trips"], 9.5)
        self.assertEqual((s["restore_p50_ms"], s["restore_p99_ms"]), (0.2, 0.3))
        self.assertEqual((s["stalled_read_p50_ms"], s["stalled_read_p99_ms"]), (5.0, 12.0))
        self.assertAlmostEqual(s["stalled_read_p99_in_cold_read_round_trips"], 12.0)
        self.assertEqual(s["first_read_without_query"], 3)

    def test_the_slowest_kills_with_the_vms_own_stall_beside_them(self):
        failover = {"recovery_ms": [2.0, 30.0, 4.0, 9.5], "stalled_read_us": [3000.0, 35000.0, 4000.0, 12000.0],
                    "vcpu_gap_us": [1100.0, 28000.0, 1300.0, 1200.0]}
        s = report.failover_summary(failover, 1000.0)
        self.assertEqual((s["vcpu_gap_p50_ms"], s["vcpu_gap_p99_ms"]), (1.3, 28.0))
        self.assertEqual([k["kill"] for k in s["slowest"]], [1, 3, 2])
        self.assertEqual(s["slowest"][0], {"kill": 1, "recovery_ms": 30.0, "vcpu_gap_ms": 28.0, "stalled_read_ms": 35.0})

    def test_a_run_without_the_readers_figures_or_cold_rand_gives_the_rest(self):
        s = report.failover_summary({"recovery_ms": [5, 7]}, None)
        self.assertEqual((s["kills"], s["p99_ms"]), (2, 7))
        self.assertNotIn("p99_in_cold_read_round_trips", s)
        self.assertNotIn("stalled_read_p50_ms", s)
        self.assertEqual(s["slowest"], [{"kill": 1, "recovery_ms": 7}, {"kill": 0, "recovery_ms": 5}])

    def test_the_slowest_kills_without_the_heartbeat_give_the_readers_stall(self):
        failover = {"recovery_ms": [2.0, 30.0, 4.0, 9.5], "stalled_read_us": [3000.0, 35000.0, 4000.0, 12000.0]}
        s = report.failover_summary(failover, 1000.0)
        self.assertNotIn("vcpu_gap_p50_ms", s)
        self.assertEqual([k["kill"] for k in s["slowest"]], [1, 3, 2])
        self.assertEqual(s["slowest"][0], {"kill": 1, "recovery_ms": 30.0, "stalled_read_ms": 35.0})

    def test_the_remote_rows_readers_figures_without_cold_rand_stay_in_ms(self):
        remote = {"workload": "remote_failover", "workers": 1, "recovery_ms": [3.0, 8.0],
                  "stalled_read_us": [6000.0, 20000.0], "heads": 0}
        s = report.failover_summary(remote, None)
        self.assertEqual((s["stalled_read_p50_ms"], s["stalled_read_p99_ms"]), (6.0, 20.0))
        self.assertNotIn("stalled_read_p99_in_cold_read_round_trips", s)


class ColdOfWarm(unittest.TestCase):
    def test_cold_seq_over_the_warm_seq_of_its_round(self):
        rows = [row("blob_file", 0, 1.0), row("cold_seq", 1, 2.0, round="a"), row("warm_seq", 1, 1.0, round="a"),
                row("blob_file", 0, 1.0), row("cold_seq", 1, 1.5, round="b"), row("warm_seq", 1, 1.2, round="b"),
                row("blob_file", 0, 1.0), row("cold_seq", 4, 1.0, round="c"), row("warm_seq", 4, 1.0, round="c"),
                # Not in a round: compared with nothing.
                row("cold_seq", 1, 9.0), row("warm_seq", 1, 1.0)]
        ratios = report.round_ratios(rows, "cold_seq", "warm_seq")
        self.assertEqual([round(r, 9) for r in ratios[1]], [0.5, 0.8])
        self.assertEqual(ratios[4], [1.0])
        figs = {(f["workload"], f["workers"]): f for f in report.figures(rows)}
        self.assertAlmostEqual(figs[("cold_seq", 1)]["ratio_to_warm"], 0.65)
        self.assertEqual(len(figs[("cold_seq", 1)]["ratios_to_warm"]), 2)
        self.assertNotIn("ratio_to_warm", figs[("warm_seq", 1)])

    def test_the_daemons_reads_over_the_blob_read_with_direct_io(self):
        rows = [row("blob_file_direct_io", 0, 1.0), row("blob_file_direct_io", 0, 2.0),
                row("blob_file_direct_io", 0, 3.0), row("blob_file", 0, 1.0), row("cold_seq", 1, 4.0)]
        figs = {(f["workload"], f["workers"]): f for f in report.figures(rows)}
        self.assertAlmostEqual(figs[("cold_seq", 1)]["ratio_to_disk"], 0.5)  # over the median, 2.0 s
        self.assertAlmostEqual(figs[("blob_file_direct_io", 0)]["ratio_to_blob_file"], 0.5)
        self.assertNotIn("ratio_to_disk", figs[("blob_file", 0)])

    def test_a_warm_seq_without_its_cold_seq_gives_nothing(self):
        self.assertEqual(report.round_ratios([row("warm_seq", 1, 1.0)], "cold_seq", "warm_seq"), {})


def files_row(workload, workers, seconds, round=None):
    r = row(workload, workers, seconds, mib=64, round=round)
    r["result"]["files"] = 10000
    return r


class SmallFileRounds(unittest.TestCase):
    # cold_small (1 worker) once among the worker counts, then rounds of cold_small,
    # warm_small and cold_small_per_read (bench.sh small_round), in a VM that slows
    # down by half between the rounds.
    ROWS = [files_row("cold_small", 1, 4.0), files_row("cold_small", 2, 4.0),
            files_row("cold_small", 1, 2.0, "s0"), files_row("warm_small", 1, 1.6, "s0"),
            files_row("cold_small_per_read", 1, 10.0, "s0"),
            files_row("cold_small", 1, 4.0, "s1"), files_row("warm_small", 1, 4.0, "s1"),
            files_row("cold_small_per_read", 1, 18.0, "s1"),
            files_row("cold_small", 1, 3.0, "s2"), files_row("warm_small", 1, 3.0, "s2"),
            files_row("cold_small_per_read", 1, 9.0, "s2")]

    def test_the_speedup_is_the_median_of_each_rounds_ratio(self):
        figs = report.figures(self.ROWS)
        speedups = report.speedups_over_per_read(self.ROWS, figs)
        self.assertEqual(speedups["cold_small_rounds"], [5.0, 4.5, 3.0])
        self.assertEqual(speedups["cold_small"], 4.5)
        # The ratio of the two medians (cold_small 3.0 or 4.0 s, per-read 10 s) would
        # mix rounds: 3.3.
        self.assertNotIn("cold_seq", speedups)

    def test_cold_small_over_the_warm_small_of_its_round(self):
        figs = {(f["workload"], f["workers"]): f for f in report.figures(self.ROWS)}
        self.assertEqual(figs[("cold_small", 1)]["ratios_to_warm"], [0.8, 1.0, 1.0])
        self.assertEqual(figs[("cold_small", 1)]["ratio_to_warm"], 1.0)
        self.assertNotIn("ratio_to_warm", figs[("cold_small", 2)])

    def test_without_rounds_the_ratio_of_the_medians(self):
        rows = [files_row("cold_small_per_read", 1, 8.0), files_row("cold_small", 1, 2.0)]
        self.assertEqual(report.speedups_over_per_read(rows, report.figures(rows)), {"cold_small": 4.0})


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    report = load_report(sys.argv.pop(1))
    unittest.main(verbosity=1)
