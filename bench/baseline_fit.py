"""Baseline fitting time: one machine, one year of hourly records (``detectors.baseline``).

The data is real simulator output, read once an hour: `simulation.generate` with the
machine's interval scaled to 3600 s (one reading per hour, so its energy is the hour's energy),
no anomalies, then `detectors.hourly.hourly_records`: 8760 `EnergyHourly` rows in about 0.1 s.
Hourly noise is the profile's per-reading noise (3 %), as if each hour were one meter sample.

The machine is HVAC-Main by default: heating and cooling, so every candidate is fitted,
including the 5P two-balance-point search, the most expensive one. The clock covers
`fit_baseline` only (candidates, grid search, validation, metrics), median of ``repeats``.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.baseline import fit_baseline
from detectors.hourly import hourly_records
from schemas.energy import EnergyHourly
from schemas.machines import MACHINES
from simulation import generate

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
DAYS = 365


def year_of_hours(machine_type: str = "hvac", seed: int = 42) -> list[EnergyHourly]:
    """A year of hourly records of the first catalogue machine of `machine_type`."""
    machine = next(m for m in MACHINES if m.type == machine_type)
    sim = generate(seed=seed, start=START, duration=timedelta(days=DAYS), machines=[machine],
                   anomalies=False, interval_scale=3600 / machine.data_interval_seconds)
    return list(hourly_records(sim.readings, sim.intervals))


def measure(repeats: int = 3, *, machine_type: str = "hvac") -> dict[str, Any]:
    """Time `fit_baseline` on a year of one machine's hourly records; print nothing.

    Returns ``rows``, ``fit_seconds_median`` (and every run in ``fit_seconds``), the chosen
    ``kind``, ``accepted``, ``cv_rmse_validation`` and ``nmbe_validation`` (percent),
    ``candidates`` fitted, ``machine`` and a one-line ``data`` description.
    """
    rows = year_of_hours(machine_type)
    machine_id = rows[0].machine_id
    times: list[float] = []
    model = None
    for i in range(max(1, repeats)):
        t0 = time.perf_counter()
        model = fit_baseline(rows, machine_id=machine_id, version=1, model_id=f"bench-{i}",
                             training_job_id="bench", trained_at=START + timedelta(days=DAYS))
        times.append(time.perf_counter() - t0)
    assert model is not None  # noqa: S101 - at least one repeat ran
    name = next(m.name for m in MACHINES if m.id == machine_id)
    return {
        "rows": len(rows),
        "fit_seconds_median": round(statistics.median(times), 4),
        "fit_seconds": [round(t, 4) for t in times],
        "kind": model.kind,
        "accepted": model.accepted,
        "cv_rmse_validation": round(model.metrics.cv_rmse_validation or float("nan"), 3),
        "nmbe_validation": round(model.metrics.nmbe_validation or 0.0, 3),
        "candidates": sum(1 for c in model.candidates if "skipped" not in c),
        "machine": name,
        "data": f"simulator, {DAYS} days read hourly (1 reading = 1 hour), no anomalies",
    }
