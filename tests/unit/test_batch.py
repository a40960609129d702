"""Batch Isolation Forest detection (`detectors.batch.detect_window`): confidence bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detectors.batch import detect_window
from schemas.energy import EnergyHourly

M = "c0000000-0000-0000-0000-000000000003"
T0 = datetime(2005, 3, 7, tzinfo=UTC)


def hour(i: int, kwh: float) -> EnergyHourly:
    return EnergyHourly(machine_id=M, hour_start=T0 + timedelta(hours=i), energy_kwh=kwh,
                        readings=120, coverage=1.0, mean_power_kw=kwh, max_power_kw=kwh)


def test_confidence_stays_in_0_1_for_an_hour_flagged_only_for_leaving_the_reference_range() -> None:
    # A near-constant reference: an hour just outside its range is flagged (trees cannot
    # extrapolate) although its forest score is below the threshold; its confidence is 0,
    # never negative.
    reference = [hour(i, 20.0 + 0.001 * (i % 3)) for i in range(168)]
    window = [hour(168 + i, 20.0) for i in range(23)] + [hour(191, 20.5)]
    found = detect_window(reference, window)
    assert found, "the hour outside the reference range is flagged"
    assert all(0.0 <= a.confidence <= 1.0 for a in found)
    assert {a.row.hour_start for a in found} == {T0 + timedelta(hours=191)}
