"""Batch detection over a window of hourly rows, against a reference period.

The old service fitted Isolation Forest on the very window it scored, so about
``contamination`` of any window was flagged, clean or not. Here the forest is fitted on a
*reference* period (by default the history before the window); ``contamination`` sets the
score threshold from the reference scores (or the row lies outside the reference's range);
and a row must also deviate by at least ``min_z`` robust standard deviations on a feature.
A window like its reference yields nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import IsolationForest

from detectors import baseline as bl
from schemas.energy import BaselineModel, EnergyHourly

FEATURES = ("mean_power_kw", "max_power_kw", "throughput_units_per_hour", "outdoor_temp_c")


@dataclass(frozen=True)
class BatchAnomaly:
    """One flagged hour, explained by its most deviating feature."""

    row: EnergyHourly
    score: float  # isolation score, higher = more anomalous
    threshold: float
    feature: str
    value: float
    expected: float
    z: float  # robust z of that feature against the reference
    anomaly_type: str
    severity: str
    energy_impact_kwh: float
    confidence: float


def _matrix(rows: Sequence[EnergyHourly], names: Sequence[str],
            model: BaselineModel | None) -> np.ndarray:
    cols = []
    for name in names:
        if name == "baseline_residual_kwh":
            if model is None:
                msg = "baseline_residual_kwh needs the baseline model"
                raise ValueError(msg)
            pred = bl.predict_many(model, rows, missing_as_zero=True)
            cols.append(np.array([r.energy_kwh for r in rows]) - pred)
        else:
            cols.append(np.array([np.nan if getattr(r, name) is None else getattr(r, name)
                                  for r in rows], dtype=float))
    return np.column_stack(cols) if cols else np.empty((len(rows), 0))


def detect_window(
    reference: Sequence[EnergyHourly],
    window: Sequence[EnergyHourly],
    *,
    contamination: float = 0.1,
    baseline: BaselineModel | None = None,
    min_z: float = 4.0,
    seed: int = 42,
) -> list[BatchAnomaly]:
    """Flag the hours of ``window`` that are anomalous relative to ``reference``.

    Parameters
    ----------
    reference, window
        Hourly rows of one machine; the reference should hold at least two days.
    contamination
        Share of the reference taken as anomalous when setting the threshold (0 to 0.5).
    baseline
        With an active baseline, the residual (actual − expected energy) is a feature too.
    min_z
        Smallest robust z (against the reference) of the most deviating feature.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> def row(i, p):
    ...     return EnergyHourly(machine_id="m", hour_start=t0 + timedelta(hours=i),
    ...                         energy_kwh=p, readings=60, coverage=1.0, mean_power_kw=p,
    ...                         max_power_kw=p * 1.1)
    >>> ref = [row(i, 20 + (i % 5) * 0.2) for i in range(200)]
    >>> clean = [row(200 + i, 20 + (i % 5) * 0.2) for i in range(24)]
    >>> detect_window(ref, clean)
    []
    >>> [a.anomaly_type for a in detect_window(ref, clean[:10] + [row(234, 35.0)])]
    ['spike']
    """
    if not 0 < contamination <= 0.5:
        msg = f"contamination must be in (0, 0.5], got {contamination}"
        raise ValueError(msg)
    if len(reference) < 24:
        msg = f"the reference period has {len(reference)} hours; at least 24 are needed"
        raise ValueError(msg)
    if not window:
        return []
    names = [n for n in FEATURES if all(getattr(r, n) is not None for r in reference)]
    if baseline is not None:
        names.append("baseline_residual_kwh")
    ref_x, win_x = _matrix(reference, names, baseline), _matrix(window, names, baseline)
    med = np.nanmedian(ref_x, axis=0)
    mad = np.nanmedian(np.abs(ref_x - med), axis=0) * 1.4826
    scale = np.where(mad > 1e-9, mad, np.maximum(np.abs(med) * 0.01, 1e-6))
    ref_z = np.nan_to_num((ref_x - med) / scale)
    win_z = np.nan_to_num((win_x - med) / scale)
    forest = IsolationForest(n_estimators=100, random_state=seed).fit(ref_z)
    ref_scores = -forest.score_samples(ref_z)
    threshold = float(np.quantile(ref_scores, 1.0 - contamination))
    top = float(ref_scores.max())
    scores = -forest.score_samples(win_z)
    lo, hi = np.nanmin(ref_z, axis=0), np.nanmax(ref_z, axis=0)
    out = []
    for i, (row, s) in enumerate(zip(window, scores, strict=True)):
        j = int(np.argmax(np.abs(win_z[i])))
        z = float(win_z[i, j])
        # Trees cannot extrapolate: a value beyond the reference's range is isolated no
        # faster than the reference's own extremes, so being outside the range counts too.
        outside = win_z[i, j] > hi[j] or win_z[i, j] < lo[j]
        if abs(z) < min_z or (s <= threshold and not outside):
            continue
        name = names[j]
        value, expected = float(win_x[i, j]), float(med[j])
        if name == "baseline_residual_kwh":
            kind, expected_energy = "baseline_deviation", row.energy_kwh - value
        else:
            kind = "spike" if z > 0 else "drop"
            expected_energy = row.energy_kwh * (expected / value) if value else row.energy_kwh
        impact = row.energy_kwh - expected_energy
        severity = "critical" if abs(z) >= 8 or abs(impact) >= 0.5 * max(expected_energy, 1e-9) \
            else "warning"
        out.append(BatchAnomaly(
            row=row, score=float(s), threshold=threshold, feature=name, value=value,
            expected=expected, z=z, anomaly_type=kind, severity=severity,
            energy_impact_kwh=round(float(impact), 4),
            # 0 for an hour flagged only for leaving the reference's range (its score is
            # below the threshold), 1 at the reference's most isolated point and beyond.
            confidence=round(float(min(1.0, max(0.0, (s - threshold) / max(top - threshold, 1e-9)))), 3),
        ))
    return out
