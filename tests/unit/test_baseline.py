"""Baselines: recovery of the simulator's generating coefficients, honest validation, acceptance."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import pytest
from scipy import stats

from detectors.baseline import (
    InsufficientData,
    acceptance,
    aggregate_daily,
    features_of,
    fit_baseline,
    goodness_of_fit,
    predict,
    predict_many,
)
from detectors.hourly import hourly_records
from schemas.energy import BaselineMetrics, BaselineModel, EnergyHourly
from schemas.machines import MACHINES, Machine
from simulation import PROFILES, generate, hourly_coefficients

# Six weeks of spring: cold mornings (heating below 12-15 °C) and warm afternoons (cooling
# above 18 °C) in both the training part and the validation part.
START = datetime(2026, 3, 9, tzinfo=UTC)  # a Monday
DAYS = 42
STEP_S = 60.0  # every machine read once a minute: 42 days in about 0.15 s per machine
KIND = {"hvac": "5P", "boiler": "3P-heating"}  # every other machine: "production"
#: The machines with drivers (the power-only lighting meter: test_simulation_power_only).
DRIVEN = tuple(m for m in MACHINES if not PROFILES[m.type].power_only)
JOB = {"version": 1, "model_id": "baseline-test", "training_job_id": "job-test",
       "trained_at": START + timedelta(days=DAYS)}


def simulate(machine: Machine, *, days: int = DAYS, start: datetime = START,
             step_s: float = STEP_S, **kw: Any) -> list[EnergyHourly]:
    sim = generate(start=start, duration=timedelta(days=days), machines=[machine],
                   anomalies=False, interval_scale=step_s / machine.data_interval_seconds, **kw)
    return list(hourly_records(sim.readings, sim.intervals))


def fit(rows: list[Any], machine_id: str = "m", **kw: Any) -> BaselineModel:
    return fit_baseline(rows, machine_id=machine_id, **{**JOB, **kw})


def row(h: int, kwh: float, *, t0: datetime = START, mid: str = "m", coverage: float = 1.0,
        production_count: float | None = None, throughput_units_per_hour: float | None = None,
        outdoor_temp_c: float | None = None) -> EnergyHourly:
    return EnergyHourly(machine_id=mid, hour_start=t0 + timedelta(hours=h), energy_kwh=kwh,
                        readings=60, coverage=coverage, mean_power_kw=kwh, max_power_kw=kwh,
                        production_count=production_count,
                        throughput_units_per_hour=throughput_units_per_hour,
                        outdoor_temp_c=outdoor_temp_c)


@pytest.fixture(scope="module")
def hourly() -> dict[str, list[EnergyHourly]]:
    return {m.id: simulate(m) for m in DRIVEN}


# --------------------------------------------------------------------------- recovery


@pytest.mark.parametrize("machine", DRIVEN, ids=[m.name for m in DRIVEN])
def test_recovers_the_generating_coefficients_and_meets_guideline_14(
    machine: Machine, hourly: dict[str, list[EnergyHourly]],
) -> None:
    rows = hourly[machine.id]
    assert len(rows) == DAYS * 24
    model = fit(rows, machine.id)
    truth = hourly_coefficients(machine)

    assert model.kind == KIND.get(machine.type, "production")
    assert model.intercept == pytest.approx(truth["intercept_kwh"], rel=0.10)
    assert model.coefficients["production"] == pytest.approx(truth["kwh_per_unit"], rel=0.10)
    if truth["heat_kwh_per_degree_hour"] > 0:
        assert model.coefficients["hdh"] == pytest.approx(
            truth["heat_kwh_per_degree_hour"], rel=0.10)
        assert model.balance_points["heating_c"] == pytest.approx(truth["heat_balance_c"],
                                                                  abs=1.5)
    else:
        assert "hdh" not in model.coefficients
    if truth["cool_kwh_per_degree_hour"] > 0:
        assert model.coefficients["cdh"] == pytest.approx(
            truth["cool_kwh_per_degree_hour"], rel=0.10)
        assert model.balance_points["cooling_c"] == pytest.approx(truth["cool_balance_c"],
                                                                  abs=1.5)
    else:
        assert "cdh" not in model.coefficients

    m = model.metrics
    assert model.accepted, model.reasons
    assert model.reasons == []
    assert m.cv_rmse_validation is not None and m.nmbe_validation is not None
    assert m.cv_rmse_validation <= 30.0 and abs(m.nmbe_validation) <= 10.0  # G14 hourly
    assert m.r_squared >= 0.5 and m.f_pvalue < 0.10  # EnPI Lite
    assert m.training_samples == 756 and m.validation_samples == 252
    assert m.data_coverage == 1.0 and m.interval == "hourly"
    assert model.training_start == START
    assert model.training_end == START + timedelta(hours=756)
    assert {"name", "cv_rmse_validation", "r_squared"} <= set(model.candidates[1])
    assert model.kind in {c["name"] for c in model.candidates}


def test_noise_is_rejected_with_the_failed_rules() -> None:
    rng = np.random.default_rng(5)
    rows = [row(h, float(rng.gamma(4.0, 10.0)), production_count=float(rng.uniform(0, 100)),
                outdoor_temp_c=float(rng.uniform(0, 30))) for h in range(24 * 42)]
    model = fit(rows)
    assert not model.accepted
    text = " | ".join(model.reasons)
    assert "CV(RMSE)" in text and "exceeds 30 %" in text and "Guideline 14" in text
    assert "R²" in text and "below 0.5" in text and "EnPI Lite" in text
    assert "F-test p-value" in text
    assert model.metrics.r_squared < 0.1


# --------------------------------------------------------------------------- validation


def test_split_is_time_ordered_whatever_the_input_order() -> None:
    """The last quarter of the hours uses 50 % more energy: only a time-ordered hold-out sees it
    (a shuffled split would spread the change over both parts and hide it)."""
    rng = np.random.default_rng(1)
    n = 24 * 28
    rows = [row(h, (10.0 + 0.1 * u) * (1.5 if h >= 0.75 * n else 1.0) + rng.normal(0, 0.2),
                production_count=u)
            for h in range(n) for u in [float(rng.uniform(0, 100))]]
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    model = fit(shuffled)
    assert model == fit(rows)
    m = model.metrics
    assert m.training_samples == 504 and m.validation_samples == 168
    assert model.training_start == START
    assert model.training_end == START + timedelta(hours=504)  # validation starts here
    assert all(r.hour_start < model.training_end for r in rows[:504])
    assert m.nmbe_validation == pytest.approx(100 * (1 - 1 / 1.5), abs=2.0)  # predicts low
    assert m.r_squared > 0.9  # the training part alone is fine ...
    assert not model.accepted  # ... the later hours are not
    assert any(r.startswith("NMBE +3") for r in model.reasons)


def test_metric_formulas_by_hand() -> None:
    # y = 10, 12, 14, 16 (mean 13); y_hat = 11, 12, 13, 14; e = -1, 0, 1, 2; p = 2
    m = goodness_of_fit([10, 12, 14, 16], [11, 12, 13, 14], n_params=2)
    assert m["r_squared"] == pytest.approx(1 - 6 / 20)
    assert m["adj_r_squared"] == pytest.approx(1 - (6 / 20) * 3 / 2)
    assert m["rmse"] == pytest.approx((6 / 2) ** 0.5)  # sqrt(SSE / (n - p))
    assert m["cv_rmse"] == pytest.approx(100 * 3**0.5 / 13)
    assert m["nmbe"] == pytest.approx(100 * 2 / (2 * 13))  # sum(e) / ((n - p) mean)
    assert m["mae"] == pytest.approx(1.0)
    v = goodness_of_fit([10, 12, 14, 16], [11, 12, 13, 14])  # out of sample: p = 0
    assert v["rmse"] == pytest.approx((6 / 4) ** 0.5)
    assert v["nmbe"] == pytest.approx(100 * 2 / (4 * 13))


def test_ols_statistics_match_scipy() -> None:
    rng = np.random.default_rng(2)
    units = rng.uniform(0, 100, 24 * 8)
    kwh = 20 + 0.05 * units + rng.normal(0, 2.0, len(units))
    rows = [row(h, float(y), production_count=float(u))
            for h, (y, u) in enumerate(zip(kwh, units, strict=True))]
    model = fit(rows, drivers=["production"])
    assert model.kind == "production"
    ref = stats.linregress(units[:144], kwh[:144])  # the training part: first 75 %
    assert model.coefficients["production"] == pytest.approx(ref.slope)
    assert model.intercept == pytest.approx(ref.intercept)
    assert model.metrics.r_squared == pytest.approx(ref.rvalue**2)
    assert model.metrics.coef_pvalues["production"] == pytest.approx(ref.pvalue, rel=1e-6)
    assert model.metrics.f_pvalue == pytest.approx(ref.pvalue, rel=1e-6)  # one driver: F = t²
    assert model.metrics.coef_pvalues["intercept"] == pytest.approx(
        2 * stats.t.sf(ref.intercept / ref.intercept_stderr, 142))
    resid = kwh[:144] - (ref.intercept + ref.slope * units[:144])
    assert model.metrics.cv_rmse == pytest.approx(
        100 * np.sqrt(resid @ resid / (144 - 2)) / kwh[:144].mean())


def _metrics(cv: float, nmbe: float, *, r2: float = 0.9, f_p: float = 0.001,
             coef_p: float = 0.01) -> BaselineMetrics:
    return BaselineMetrics(
        r_squared=r2, adj_r_squared=r2, rmse=1.0, mae=1.0, cv_rmse=cv, nmbe=0.0, f_pvalue=f_p,
        coef_pvalues={"intercept": 0.9, "production": coef_p}, training_samples=100,
        validation_samples=30, r_squared_validation=r2, rmse_validation=1.0,
        mae_validation=1.0, cv_rmse_validation=cv, nmbe_validation=nmbe, data_coverage=1.0)


def test_acceptance_thresholds_hourly_vs_monthly() -> None:
    assert acceptance(_metrics(30.0, -10.0), "hourly") == (True, [])  # limits included
    assert acceptance(_metrics(15.0, 5.0), "monthly") == (True, [])
    ok, reasons = acceptance(_metrics(30.1, 10.1), "hourly")
    assert not ok and reasons == [
        "CV(RMSE) 30.1 % exceeds 30 % (ASHRAE Guideline 14, hourly; validation)",
        "NMBE +10.1 % is outside ±10 % (ASHRAE Guideline 14, hourly; validation)"]
    ok, reasons = acceptance(_metrics(20.0, 7.0), "monthly")
    assert not ok and len(reasons) == 2 and all("monthly" in r for r in reasons)
    assert acceptance(_metrics(20.0, 7.0), "hourly") == (True, [])
    assert acceptance(_metrics(20.0, 7.0), "daily") == (True, [])
    ok, reasons = acceptance(_metrics(5.0, 0.0, r2=0.49, f_p=0.1, coef_p=0.2), "hourly")
    assert not ok and reasons == [
        "F-test p-value 0.1 is not below 0.10 (EnPI Lite model validity)",
        "R² 0.49 is below 0.5 (EnPI Lite model validity)",
        "coefficient of production has p-value 0.2, not below 0.2 (EnPI Lite variable rule)"]
    ok, reasons = acceptance(_metrics(float("nan"), 0.0), "hourly")
    assert not ok and "undefined" in reasons[0]
    no_validation = msgspec.structs.replace(_metrics(99.0, 99.0), cv_rmse_validation=None,
                                            nmbe_validation=None, cv_rmse=10.0)
    assert acceptance(no_validation, "hourly") == (True, [])
    with pytest.raises(ValueError, match="unknown interval"):
        acceptance(_metrics(1.0, 0.0), "weekly")


# --------------------------------------------------------------------------- inputs


def test_insufficient_data() -> None:
    with pytest.raises(InsufficientData, match="at least 48"):
        fit([row(h, 10.0 + h % 5, production_count=float(h)) for h in range(47)])
    with pytest.raises(InsufficientData, match="does not vary"):
        fit([row(h, 10.0, production_count=float(h)) for h in range(200)])
    with pytest.raises(InsufficientData, match="no rows"):
        fit([])
    low = [row(h, 10.0 + h % 5, production_count=1.0, coverage=0.5) for h in range(100)]
    with pytest.raises(InsufficientData, match="coverage"):
        fit(low)
    assert issubclass(InsufficientData, ValueError)


def test_bad_arguments() -> None:
    rows = [row(h, 10.0 + h % 5, production_count=float(h % 5)) for h in range(100)]
    with pytest.raises(ValueError, match=r"unknown drivers \['humidity', 'wind'\]"):
        fit(rows, drivers=["production", "wind", "humidity"])
    with pytest.raises(ValueError, match="holdout"):
        fit(rows, holdout=0.0)
    with pytest.raises(ValueError, match="interval"):
        fit(rows, interval="monthly")
    with pytest.raises(ValueError, match="machine 'other'"):
        fit([*rows, row(200, 1.0, mid="other")])
    with pytest.raises(ValueError, match="timezone-aware"):
        fit(rows, trained_at=datetime(2026, 1, 1))  # noqa: DTZ001


def test_drivers_restrict_the_candidates(hourly: dict[str, list[EnergyHourly]]) -> None:
    boiler = MACHINES[6]
    model = fit(hourly[boiler.id], boiler.id, drivers=["production"])
    assert model.kind == "production" and model.feature_names == ["production"]
    assert {c["name"] for c in model.candidates} == {"mean", "production"}
    assert not model.accepted  # the boiler's weather load is left unexplained
    weather_only = fit(hourly[boiler.id], boiler.id, drivers=["outdoor_temp"])
    assert weather_only.kind == "3P-heating" and weather_only.feature_names == ["hdh"]


def test_missing_temperature_means_no_degree_terms() -> None:
    rng = np.random.default_rng(4)
    rows = [row(h, 5 + 0.1 * u + rng.normal(0, 0.1), production_count=u)
            for h in range(24 * 7) for u in [float(rng.uniform(0, 50))]]
    model = fit(rows)
    assert model.kind == "production"
    assert not any("3P" in str(c["name"]) or "5P" in str(c["name"]) for c in model.candidates)


def test_constant_production_is_dropped_with_a_reason() -> None:
    temps = 12 + 8 * np.sin(np.arange(24 * 21) / 24 * 2 * np.pi / 3)
    rows = [row(h, 3 + 2 * max(0.0, 14 - t), production_count=0.0, outdoor_temp_c=float(t))
            for h, t in enumerate(temps)]
    model = fit(rows)
    assert model.kind == "3P-heating" and model.feature_names == ["hdh"]
    assert model.coefficients["hdh"] == pytest.approx(2.0)
    assert model.balance_points["heating_c"] == pytest.approx(14.0)
    notes = {c["name"]: c.get("note") for c in model.candidates}
    assert notes["production"] == "production dropped: constant (0) in the training rows"


def test_throughput_stands_in_for_a_missing_count() -> None:
    rng = np.random.default_rng(6)
    rows = [row(h, 4 + 0.2 * u + rng.normal(0, 0.1), throughput_units_per_hour=u)
            for h in range(24 * 7) for u in [float(rng.uniform(0, 50))]]
    model = fit(rows)
    assert model.coefficients["production"] == pytest.approx(0.2, rel=0.02)


def test_low_coverage_hours_are_left_out_and_duplicates_collapse() -> None:
    rng = np.random.default_rng(7)
    rows = [row(h, 4 + 0.2 * u + rng.normal(0, 0.1), production_count=u,
                coverage=0.5 if h % 10 == 0 else 1.0)
            for h in range(24 * 10) for u in [float(rng.uniform(0, 50))]]
    model = fit(rows + rows[-5:])  # replayed duplicates
    assert model.metrics.data_coverage == pytest.approx(0.9, abs=0.01)
    assert model.metrics.training_samples + model.metrics.validation_samples == 216


def test_progress_reports_the_real_stages(hourly: dict[str, list[EnergyHourly]]) -> None:
    calls: list[tuple[str, float, str]] = []
    fit(hourly[MACHINES[1].id], MACHINES[1].id,
        progress=lambda stage, pct, msg: calls.append((stage, pct, msg)))
    assert [c[0] for c in calls] == ["features_built", "candidates_fitted", "validated"]
    assert [c[1] for c in calls] == sorted(c[1] for c in calls) and calls[-1][1] == 100.0
    assert "1008 usable hourly rows" in calls[0][2]
    assert "chose 5P" in calls[2][2] and "accepted" in calls[2][2]


# --------------------------------------------------------------------------- prediction


def test_predict_matches_the_stored_numbers_and_survives_json(
    hourly: dict[str, list[EnergyHourly]],
) -> None:
    hvac = MACHINES[1]
    model = fit(hourly[hvac.id], hvac.id)
    back = msgspec.json.decode(msgspec.json.encode(model), type=BaselineModel)
    assert back == model
    rows = hourly[hvac.id][-48:]
    many = predict_many(back, rows)
    assert many == pytest.approx([predict(model, r) for r in rows])
    actual = np.array([r.energy_kwh for r in rows])
    # within 1 % typically; up to ~5 % in an hour whose temperature crosses a balance point
    assert np.median(np.abs(many / actual - 1)) < 0.01
    assert many == pytest.approx(actual, rel=0.10)
    r = rows[0]
    assert r.production_count is not None and r.outdoor_temp_c is not None
    x = features_of(model, r)
    assert x.tolist() == pytest.approx([
        r.production_count, max(0.0, model.balance_points["heating_c"] - r.outdoor_temp_c),
        max(0.0, r.outdoor_temp_c - model.balance_points["cooling_c"])])
    no_temp = msgspec.structs.replace(r, outdoor_temp_c=None)
    with pytest.raises(ValueError, match="lacks the drivers"):
        predict(model, no_temp)
    assert np.isnan(predict_many(model, [no_temp])[0])
    without_weather = model.intercept + model.coefficients["production"] * r.production_count
    assert predict(model, no_temp, missing_as_zero=True) == pytest.approx(without_weather)
    assert predict_many(model, [no_temp], missing_as_zero=True) == pytest.approx(
        [without_weather])
    assert predict_many(model, []).shape == (0,)


def test_predict_is_never_negative() -> None:
    rng = np.random.default_rng(8)
    rows = [row(h, 50 - 0.4 * u + rng.normal(0, 0.5), production_count=u)
            for h in range(24 * 7) for u in [float(rng.uniform(0, 100))]]
    model = fit(rows)
    assert model.coefficients["production"] < 0
    assert predict(model, row(0, 0.0, production_count=1000.0)) == 0.0


# --------------------------------------------------------------------------- scenarios


def test_efficiency_change_shows_up_after_the_change() -> None:
    motor = MACHINES[2]
    when = START + timedelta(days=28)
    rows = simulate(motor, efficiency_changes={motor.id: (when, 1.25)})
    before = [r for r in rows if r.hour_start < when]
    after = [r for r in rows if r.hour_start >= when]
    model = fit(before, motor.id)
    assert model.accepted
    predicted = predict_many(model, after)
    actual = np.array([r.energy_kwh for r in after])
    assert predicted.sum() / actual.sum() == pytest.approx(0.80, abs=0.02)  # 20 % low
    # a baseline over the whole window sees the change in its (later) validation part
    whole = fit(rows, motor.id)
    assert not whole.accepted
    assert whole.metrics.nmbe_validation is not None and whole.metrics.nmbe_validation > 10
    assert any(r.startswith("NMBE") for r in whole.reasons)


def test_daily_baseline(hourly: dict[str, list[EnergyHourly]]) -> None:
    boiler = MACHINES[6]
    rows = simulate(boiler, days=70, start=START - timedelta(days=14), step_s=300.0)
    days = aggregate_daily(rows)
    assert len(days) == 70 and all(d.coverage == 1.0 for d in days)
    assert sum(d.energy_kwh for d in days) == pytest.approx(sum(r.energy_kwh for r in rows))
    model = fit(days, boiler.id, interval="daily")
    assert model.metrics.interval == "daily"
    assert model.kind.startswith("3P-heating") and "hdd" in model.feature_names
    assert model.metrics.r_squared > 0.9
    assert model.metrics.training_samples == 52 and model.metrics.validation_samples == 18
    assert model.training_end == days[52].hour_start
    weekday = days[0]  # a Monday in the training part
    assert predict(model, weekday) == pytest.approx(weekday.energy_kwh, rel=0.1)


def test_a_year_of_hourly_data_fits_fast() -> None:
    boiler = MACHINES[6]
    rows = simulate(boiler, days=365, start=datetime(2026, 1, 5, tzinfo=UTC), step_s=3600.0)
    assert len(rows) == 8760
    t0 = time.perf_counter()
    model = fit(rows, boiler.id)
    assert time.perf_counter() - t0 < 3.0
    assert model.kind == "3P-heating" and model.accepted
