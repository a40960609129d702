"""The in-process benchmarks run (figures are not asserted: speed belongs to bench/)."""

from __future__ import annotations

from bench import baseline_fit, detect, throughput


def test_core_benchmark_runs_on_a_small_stream() -> None:
    out = throughput.core(throughput.simulated_readings(3000), repeats=1)
    assert out["readings"] == 3000 and out["score_readings_per_s"] > 0


def test_detect_and_baseline_benchmarks_run() -> None:
    d = detect.measure(repeats=1)
    assert d["window_readings"] == 7 * 24 * 60
    assert d["anomalies_on_clean"] == 0  # a clean week against its reference week
    b = baseline_fit.measure(repeats=1)
    assert b["rows"] == 8760 and b["accepted"] is True
