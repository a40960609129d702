"""Hourly energy records and baseline models, as plain data (namespace ``enms.energy``, v1).

`EnergyHourly` is what training reads (topic ``enms.energy.hourly``), so any training can be
replayed. `BaselineModel` stores a fitted baseline as plain numbers (coefficients, balance
points, feature names), never a pickle: any version can be read, compared and re-applied.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from schemas.types import TZDateTime


class EnergyHourly(msgspec.Struct, frozen=True, kw_only=True):
    """One machine-hour: energy and driver averages (event time, UTC hour buckets).

    ``coverage`` is readings received / readings expected at the machine's interval (0-1).
    Driver fields are None when no reading of the hour carried them.
    """

    NAMESPACE: ClassVar[str] = "enms.energy.hourly"
    TOPIC: ClassVar[str] = "enms.energy.hourly"

    machine_id: str
    hour_start: TZDateTime
    energy_kwh: float
    readings: int
    coverage: float
    mean_power_kw: float
    max_power_kw: float
    production_count: float | None = None  # units produced in the hour (sum)
    throughput_units_per_hour: float | None = None  # mean
    outdoor_temp_c: float | None = None  # mean
    machine_temp_c: float | None = None  # mean
    pressure_bar: float | None = None  # mean
    schema_version: int = 1


class BaselineMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Fit and validation figures of one baseline (ASHRAE Guideline 14 / EnPI Lite terms).

    In-sample figures are on the training part; ``*_validation`` on the time-ordered
    hold-out that follows it (never shuffled: no leakage from the future).
    """

    r_squared: float
    adj_r_squared: float
    rmse: float
    mae: float
    cv_rmse: float  # percent
    nmbe: float  # percent
    f_pvalue: float
    coef_pvalues: dict[str, float]
    training_samples: int
    validation_samples: int
    r_squared_validation: float | None
    rmse_validation: float | None
    mae_validation: float | None
    cv_rmse_validation: float | None  # percent
    nmbe_validation: float | None  # percent
    data_coverage: float  # share of the window's hours present, 0-1
    interval: str = "hourly"


class BaselineModel(msgspec.Struct, frozen=True, kw_only=True):
    """A fitted baseline: predicts hourly energy (kWh) from drivers.

    ``prediction = intercept + Σ coefficients[name] · feature(name)`` where the features are
    computed from an hour's drivers by ``detectors.baseline`` using ``balance_points``
    (``heating_c``/``cooling_c`` for degree-hour terms) and the names in ``feature_names``.
    """

    NAMESPACE: ClassVar[str] = "enms.model.baseline"

    model_id: str
    machine_id: str
    model_type: str = "baseline"
    version: int
    kind: str  # candidate that won, e.g. "production", "5P", "production+tow"
    feature_names: list[str]
    coefficients: dict[str, float]
    intercept: float
    balance_points: dict[str, float] = msgspec.field(default_factory=dict)
    metrics: BaselineMetrics
    accepted: bool
    reasons: list[str] = msgspec.field(default_factory=list)
    candidates: list[dict[str, float | str]] = msgspec.field(default_factory=list)
    training_start: TZDateTime
    training_end: TZDateTime
    trained_at: TZDateTime
    training_job_id: str
    schema_version: int = 1
