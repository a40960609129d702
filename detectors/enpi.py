"""The active baseline's live view of one machine: expected energy, EnPI, CUSUM, drift."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from detectors import baseline as bl
from detectors.drift import TabularCusum
from detectors.state import BaselineState, Interval
from schemas.energy import BaselineModel, EnergyHourly
from schemas.events import SystemAlert, stable_event_id
from schemas.machines import Machine


class LiveBaseline:
    """What the active baseline says about the live readings of one machine.

    `expected` is a metric interval's energy as the baseline (an hourly model) predicts it
    from the interval's drivers; `account` adds actual − expected to the interval CUSUM
    (kWh); `check` feeds a closed hour's standardised residual to the drift test
    (`TabularCusum`) and returns a `SystemAlert` when it fires, once per model version. A
    new model (`set`) restarts the CUSUM and the drift test.

    The state keeps the model's id, not the model (the registry holds models): after `load`
    the caller sets the active model again, and the same id goes on with the same sums.

    Parameters
    ----------
    machine
        The machine (its id and name go into the alert).

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from schemas.machines import MACHINES
    >>> live = LiveBaseline(MACHINES[2])
    >>> model = bl._example_model()  # 4 + 0.2 production + 1.5 hdh(15 °C) + 2 weekend
    >>> live.set(model)
    >>> t = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday
    >>> i = Interval(bucket=0, readings=2, production=1.0, temp_sum=30.0, temp_n=2)
    >>> live.expected(i, t, 60)  # a minute of 4 + 0.2 * 60 units/h
    0.2666...
    >>> live.account(0.3 - 0.2666), live.cusum_kwh
    (0.0334..., 0.0334...)
    """

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.drift = TabularCusum()

    # State, beside the drift test's own (class defaults until first set).
    _model_id: str | None = None  # the model the sums are of
    _cusum_kwh: float = 0.0
    _alarmed: bool = False  # the drift test fired for this model version
    _model: BaselineModel | None = None  # that model, when the caller has set it

    @property
    def model(self) -> BaselineModel | None:
        """The active baseline (None: none)."""
        return self._model

    @property
    def cusum_kwh(self) -> float:
        """Σ (actual − expected) energy over the metric intervals since the model was set."""
        return self._cusum_kwh

    @cusum_kwh.setter
    def cusum_kwh(self, value: float) -> None:
        self._cusum_kwh = value

    def set(self, model: BaselineModel | None) -> None:
        """Use this active baseline; a new version restarts the CUSUM and the drift test."""
        model_id = None if model is None else model.model_id
        self._model = model
        if model_id == self._model_id:
            return
        self._model_id = model_id
        self._cusum_kwh = 0.0
        self.drift.reset()
        self._alarmed = False

    def expected(self, i: Interval, start: datetime, size: int) -> float | None:
        """Expected energy (kWh) of the interval ``i`` of ``size`` s from ``start``; None
        without a model, or when the interval lacks a driver the model needs."""
        if self._model is None:
            return None
        per_hour = 3600.0 / size
        row = EnergyHourly(
            machine_id=self.machine.id, hour_start=start.replace(minute=0, second=0),
            energy_kwh=0.0, readings=i.readings, coverage=1.0, mean_power_kw=0.0,
            max_power_kw=0.0, production_count=i.production * per_hour,
            outdoor_temp_c=i.temp_sum / i.temp_n if i.temp_n else None)
        try:
            return bl.predict(self._model, row) / per_hour
        except ValueError:  # a driver the model needs is missing in this interval
            return None

    def account(self, kwh: float) -> float:
        """Add an interval's actual − expected energy to the CUSUM; the CUSUM."""
        self._cusum_kwh += kwh
        return self._cusum_kwh

    def check(self, rec: EnergyHourly) -> SystemAlert | None:
        """Feed a closed hour's residual to the drift test; an alert when it fires."""
        model = self._model
        if model is None or self._alarmed or rec.coverage < 0.5:
            return None
        try:
            expected = bl.predict(model, rec)
        except ValueError:
            return None
        # Standardise by the model's own validated error: z = 1 is a typical hour's miss.
        rmse = max(model.metrics.rmse_validation or model.metrics.rmse, 1e-6)
        z = (rec.energy_kwh - expected) / rmse
        drift = self.drift
        if not math.isfinite(z) or not drift.update(z):  # a NaN would stick in the sums
            return None
        self._alarmed = True  # once per model version: the retrain decides what next
        end = rec.hour_start + timedelta(hours=1)
        mid = self.machine.id
        return SystemAlert(
            event_id=stable_event_id("system_alert", "baseline_drift", mid, model.model_id,
                                     end.isoformat()),
            occurred_at=end, machine_id=mid, alert_type="baseline_drift", severity="warning",
            message=(f"{self.machine.name}: energy drifted {drift.direction} from "
                     f"baseline v{model.version} (CUSUM over {drift.n} hours)"),
            details={"model_version": model.version, "model_id": model.model_id,
                     "direction": drift.direction, "hours": drift.n,
                     "cusum_high": round(drift.s_hi, 3), "cusum_low": round(drift.s_lo, 3),
                     "k": drift.k, "h": drift.h,
                     "last_actual_kwh": round(rec.energy_kwh, 4),
                     "last_expected_kwh": round(expected, 4), "retrain": True})

    def state(self) -> BaselineState:
        """The live view as data (the model by its id)."""
        return BaselineState(model_id=self._model_id, cusum_kwh=self._cusum_kwh,
                             drift=self.drift.state(), alarmed=self._alarmed)

    def load(self, state: BaselineState) -> None:
        """Take the state `state` gave; `set` the model again to go on with its sums."""
        self._model = None
        self._model_id = state.model_id
        self._cusum_kwh = state.cusum_kwh
        self._alarmed = state.alarmed
        self.drift.load(state.drift)

    def __repr__(self) -> str:
        return f"LiveBaseline(machine={self.machine.name!r})"
