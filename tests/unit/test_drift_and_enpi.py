"""Live EnPI/CUSUM in metric_updated and the drift alert, on simulator truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detectors.baseline import fit_baseline
from detectors.hourly import hourly_records
from detectors.scoring import MachineScorer, Output, ScoringConfig
from schemas.energy import BaselineModel
from schemas.events import MetricUpdated, SystemAlert
from schemas.machines import Machine, machine_by_id
from simulation import generate

BOILER = "c0000000-0000-0000-0000-000000000007"
T0 = datetime(2032, 3, 1, tzinfo=UTC)


def machine(machine_id: str) -> Machine:
    m = machine_by_id(machine_id)
    assert m is not None, machine_id
    return m


@pytest.fixture(scope="module")
def model() -> BaselineModel:
    sim = generate(seed=11, start=T0, duration=timedelta(days=35),
                   machines=[machine(BOILER)], anomalies=False)
    rows = list(hourly_records(sim.readings))
    m = fit_baseline(rows, machine_id=BOILER, version=1, model_id="m1", training_job_id="j1",
                     trained_at=T0 + timedelta(days=35))
    assert m.accepted, m.reasons
    return m


def run_after(model: BaselineModel, factor: float | None, days: float = 3) -> list[Output]:
    start = T0 + timedelta(days=35)
    changes = None if factor is None else {BOILER: (start + timedelta(hours=12), factor)}
    sim = generate(seed=12, start=start, duration=timedelta(days=days),
                   machines=[machine(BOILER)], anomalies=False, efficiency_changes=changes)
    s = MachineScorer(BOILER, ScoringConfig())
    s.set_baseline(model)
    return [o for r in sim.readings for o in s.step(r)]


def test_no_drift_alert_and_enpi_near_one_when_nothing_changes(model: BaselineModel) -> None:
    out = run_after(model, None)
    assert not [o for o in out if isinstance(o, SystemAlert)]
    metrics = [o for o in out if isinstance(o, MetricUpdated)]
    enpis = [m.enpi for m in metrics if m.enpi is not None]
    assert len(enpis) > 1000
    total_actual = sum(m.energy_kwh for m in metrics)
    expected = [e for m in metrics if (e := m.expected_energy_kwh) is not None]
    assert len(expected) == len(metrics)  # every window has an expectation
    total_expected = sum(expected)
    assert total_actual / total_expected == pytest.approx(1.0, abs=0.03)


def test_efficiency_loss_raises_a_drift_alert_soon_after_with_a_retrain(model: BaselineModel) -> None:
    out = run_after(model, 1.25)
    alerts = [o for o in out if isinstance(o, SystemAlert)]
    assert len(alerts) == 1  # once per model version
    a = alerts[0]
    assert a.alert_type == "baseline_drift" and a.details["direction"] == "up"
    assert a.details["retrain"] is True
    changed_at = T0 + timedelta(days=35, hours=12)
    assert changed_at < a.occurred_at <= changed_at + timedelta(hours=12)
    # CUSUM of (actual - expected) grows after the change.
    metrics = [o for o in out if isinstance(o, MetricUpdated)]
    cusum = metrics[-1].cusum_kwh
    assert cusum is not None
    assert cusum > 0.15 * sum(m.expected_energy_kwh or 0 for m in metrics
                              if m.window_start >= changed_at)


def test_a_new_model_restarts_cusum_and_drift(model: BaselineModel) -> None:
    s = MachineScorer(BOILER, ScoringConfig())
    s.set_baseline(model)
    s.cusum_kwh = 5.0
    s.set_baseline(model)  # same version: nothing restarts
    assert s.cusum_kwh == 5.0
    s.set_baseline(None)
    assert s.cusum_kwh == 0.0 and s.baseline is None
