"""Time the batch detection behind POST /anomaly/detect on a week of 1-minute data."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.batch import detect_window
from detectors.hourly import hourly_records
from schemas.machines import machine_by_id
from simulation import generate

MOTOR = "c0000000-0000-0000-0000-000000000003"


def measure(repeats: int = 3) -> dict[str, Any]:
    """Simulate two weeks of one machine at one reading a minute (the first week is the
    reference, the second the window) and time aggregation + Isolation Forest; the Kafka
    read of the endpoint is not included (it is bounded by the broker, about 50k records/s
    here)."""
    machine = machine_by_id(MOTOR)
    assert machine is not None  # noqa: S101
    start = datetime(2026, 1, 5, tzinfo=UTC)
    split = start + timedelta(days=7)
    sim = generate(seed=3, start=start, duration=timedelta(days=14), machines=[machine],
                   anomalies=False, interval_scale=60.0 / machine.data_interval_seconds)
    readings = list(sim.readings)
    times, found = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref = list(hourly_records((r for r in readings if r.timestamp < split),
                                  intervals={MOTOR: 60.0}))
        win = list(hourly_records((r for r in readings if r.timestamp >= split),
                                  intervals={MOTOR: 60.0}))
        found = len(detect_window(ref, win, contamination=0.1))
        times.append(time.perf_counter() - t0)
    return {"readings": len(readings), "window_readings": sum(r.timestamp >= split
                                                              for r in readings),
            "seconds_median": round(statistics.median(times), 4), "anomalies_on_clean": found}
