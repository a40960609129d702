"""Energy baselines: a machine's hourly (or daily) energy predicted from its drivers.

Pure: rows in, a `BaselineModel` (plain numbers) out. No I/O and no clock: ``trained_at`` and
the ids come from the caller.

Features
--------
Computed from an `EnergyHourly`-like row (attributes or mapping keys of the same names):

``production``
    ``production_count`` (units in the hour); when it is None, ``throughput_units_per_hour``
    times the row's length (1 h, or 24 h for daily rows).
``hdh`` / ``cdh`` (daily rows: ``hdd`` / ``cdd``)
    Heating and cooling degree-hours of the row's mean outdoor temperature ``T``:
    ``max(0, Th - T)`` and ``max(0, T - Tc)``, with balance points ``Th <= Tc`` searched on a
    grid (5-25 deg C by 0.5, then refined by 0.1 around the best).
``weekend``, ``shift``
    Time of week from ``hour_start`` (UTC): Saturday or Sunday; and Monday-Friday
    06:00-22:00 UTC, the plant's two shifts (hourly rows only).

Candidates
----------
``mean`` (intercept only, the null model); ``production``; ``3P-heating`` and
``3P-cooling`` (production + one degree term: the 3-parameter change-point shape);
``5P`` (production + both degree terms with a flat band between ``Th`` and ``Tc``; reported as
``4P`` when the best ``Th == Tc``); and a ``+tow`` variant of each (``tow`` alone when there is
no production) adding the weekend and shift indicators. A degree term is a candidate only when
outdoor temperature is present, and its slope must be positive (more energy further from the
balance point) with at least ``max(10, 2 %)`` of the training rows on each side.
`fit_baseline`'s ``drivers`` can exclude driver groups.

Fitting and choosing (no leakage)
---------------------------------
Rows are sorted by ``hour_start``; the first ``1 - holdout`` are the training part and the
rest, strictly later, the validation part. Every candidate (balance points included) is fitted
by ordinary least squares on the training part only, then predicts the validation part. The
winner has the lowest validation CV(RMSE); candidates within 2 % (relative) + 0.05 points of
it count as tied and the one with fewest parameters wins. The winner is NOT refitted on the
whole window: the stored coefficients are exactly the model whose validation figures are
reported, so every figure describes the stored model.

Metrics (ASHRAE Guideline 14 definitions)
-----------------------------------------
With ``e = y - y_hat``, ``n`` rows, mean ``y_bar`` and ``p`` parameters (regression
coefficients including the intercept, plus each searched balance point)::

    R2         = 1 - sum(e^2) / sum((y - y_bar)^2)
    adj R2     = 1 - (1 - R2) (n - 1) / (n - p)
    RMSE       = sqrt(sum(e^2) / (n - p))
    CV(RMSE)   = 100 * RMSE / y_bar                      (percent)
    NMBE       = 100 * sum(e) / ((n - p) * y_bar)        (percent; > 0: model predicts low)
    MAE        = mean(|e|)

In-sample figures are on the training part with that ``p``; validation figures use ``p = 0``
(no parameter was fitted on those rows). With an intercept the in-sample NMBE is 0 by
construction, so only the validation NMBE says anything. The F-test p-value (drivers vs the
intercept-only model; 1.0 for the intercept-only model) and the per-coefficient t-test
p-values are ordinary OLS tests on the training part, conditional on the balance points.

Acceptance (`acceptance`)
-------------------------
ASHRAE Guideline 14 on the validation figures: CV(RMSE) at most 30 % and NMBE within ±10 %
for hourly (and daily) data, 15 % and ±5 % for monthly. EnPI Lite model validity on the
training fit: F-test p < 0.10 and R² >= 0.5, and each driver's coefficient p < 0.2. A model
that fails keeps its reasons in ``BaselineModel.reasons``; activating it is the caller's call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from scipy import stats

from schemas.energy import BaselineMetrics, BaselineModel, EnergyHourly

__all__ = [
    "DRIVERS",
    "G14_LIMITS",
    "InsufficientData",
    "acceptance",
    "aggregate_daily",
    "features_of",
    "fit_baseline",
    "goodness_of_fit",
    "predict",
    "predict_many",
]

#: Driver groups `fit_baseline` may use (its ``drivers`` argument).
DRIVERS: tuple[str, ...] = ("production", "outdoor_temp", "time_of_week")
#: ASHRAE Guideline 14: (max CV(RMSE) %, max |NMBE| %) per data interval. Daily data is held
#: to the hourly limits (the guideline names only hourly and monthly).
G14_LIMITS: dict[str, tuple[float, float]] = {
    "hourly": (30.0, 10.0), "daily": (30.0, 10.0), "monthly": (15.0, 5.0)}
ENPI_MAX_F_PVALUE = 0.10
ENPI_MIN_R_SQUARED = 0.5
ENPI_MAX_COEF_PVALUE = 0.2
#: Fewest usable rows `fit_baseline` accepts, per interval.
MIN_ROWS: dict[str, int] = {"hourly": 48, "daily": 14}
#: A driver is used when present in at least this share of the usable rows.
MIN_DRIVER_SHARE = 0.9
BALANCE_GRID_C: tuple[float, float, float] = (5.0, 25.0, 0.5)  # low, high, step
SHIFT_HOURS_UTC: tuple[int, int] = (6, 22)
_TIE_REL = 0.02
_TIE_ABS = 0.05
_ROW_SECONDS = {"hourly": 3600, "daily": 86_400}
_DEGREE = {"hourly": ("hdh", "cdh"), "daily": ("hdd", "cdd")}

Progress = Callable[[str, float, str], None]


class InsufficientData(ValueError):
    """Too few usable rows, or energy that does not vary: no baseline can be fitted."""


# --------------------------------------------------------------------------- rows -> arrays


def _get(row: Any, name: str) -> Any:
    if isinstance(row, Mapping):
        return row.get(name)
    return getattr(row, name, None)


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


@dataclass(frozen=True)
class _Table:
    """Columns of rows sorted by time; NaN marks a missing driver."""

    t: np.ndarray  # row start, POSIX seconds
    y: np.ndarray  # energy_kwh
    coverage: np.ndarray
    production: np.ndarray
    temp: np.ndarray

    @property
    def weekend(self) -> np.ndarray:
        weekday = (np.floor(self.t / 86_400) + 3) % 7  # 1970-01-01 was a Thursday
        return (weekday >= 5).astype(float)

    @property
    def shift(self) -> np.ndarray:
        days = np.floor(self.t / 86_400)
        hour = (self.t - days * 86_400) / 3600
        lo, hi = SHIFT_HOURS_UTC
        out: np.ndarray = (((days + 3) % 7 < 5) & (hour >= lo) & (hour < hi)).astype(float)
        return out

    def take(self, idx: np.ndarray | slice) -> _Table:
        return _Table(self.t[idx], self.y[idx], self.coverage[idx], self.production[idx],
                      self.temp[idx])

    def __len__(self) -> int:
        return len(self.t)


def _table(rows: Sequence[Any], interval: str) -> _Table:
    hours = _ROW_SECONDS[interval] / 3600
    t, y, cov, prod, temp = [], [], [], [], []
    for r in rows:
        start = _get(r, "hour_start")
        if not isinstance(start, datetime) or start.utcoffset() is None:
            msg = f"hour_start must be a timezone-aware datetime, got {start!r}"
            raise ValueError(msg)
        t.append(start.timestamp())
        y.append(_num(_get(r, "energy_kwh")))
        c = _get(r, "coverage")
        cov.append(1.0 if c is None else float(c))
        count = _get(r, "production_count")
        if count is None:
            uph = _get(r, "throughput_units_per_hour")
            count = None if uph is None else float(uph) * hours
        prod.append(_num(count))
        temp.append(_num(_get(r, "outdoor_temp_c")))
    return _Table(*(np.asarray(a, dtype=float) for a in (t, y, cov, prod, temp)))


def _column(table: _Table, name: str, bp: Mapping[str, float]) -> np.ndarray:
    if name == "production":
        return table.production
    if name in ("hdh", "hdd"):
        return np.maximum(0.0, bp["heating_c"] - table.temp)
    if name in ("cdh", "cdd"):
        return np.maximum(0.0, table.temp - bp["cooling_c"])
    if name == "weekend":
        return table.weekend
    if name == "shift":
        return table.shift
    msg = f"unknown feature {name!r}"
    raise ValueError(msg)


def _design(table: _Table, names: Sequence[str], bp: Mapping[str, float]) -> np.ndarray:
    cols = [_column(table, name, bp) for name in names]
    return np.column_stack(cols) if cols else np.empty((len(table), 0))


# --------------------------------------------------------------------------- metrics


def goodness_of_fit(y: Any, y_hat: Any, n_params: int = 0) -> dict[str, float]:
    """R², adjusted R², RMSE, MAE, CV(RMSE) % and NMBE % (Guideline 14 definitions, see above).

    ``n_params`` is ``p``: 0 for out-of-sample figures.

    Examples
    --------
    >>> m = goodness_of_fit([10, 12, 14, 16], [11, 12, 13, 14], n_params=2)
    >>> m["r_squared"], m["adj_r_squared"], m["mae"]
    (0.7, 0.55, 1.0)
    >>> m["rmse"], m["cv_rmse"], m["nmbe"]  # sqrt(6 / 2); / 13 * 100; 2 / (2 * 13) * 100
    (1.732..., 13.32..., 7.69...)
    """
    y = np.asarray(y, dtype=float)
    e = y - np.asarray(y_hat, dtype=float)
    n = len(y)
    dof = n - n_params
    mean = float(y.mean())
    sse = float(e @ e)
    sst = float(((y - mean) ** 2).sum())
    r2 = 1.0 - sse / sst if sst > 0 else math.nan
    adj = 1.0 - (1.0 - r2) * (n - 1) / dof if dof > 0 else math.nan
    rmse = math.sqrt(sse / dof) if dof > 0 else math.nan
    nmbe = 100.0 * float(e.sum()) / (dof * mean) if dof > 0 and mean != 0 else math.nan
    return {
        "r_squared": r2,
        "adj_r_squared": adj,
        "rmse": rmse,
        "mae": float(np.abs(e).mean()),
        "cv_rmse": 100.0 * rmse / mean if mean != 0 else math.nan,
        "nmbe": nmbe,
    }


def acceptance(metrics: BaselineMetrics, interval: str = "hourly") -> tuple[bool, list[str]]:
    """Whether a fit meets Guideline 14 (for `interval`) and EnPI Lite; the failed rules.

    Guideline 14 is judged on the validation CV(RMSE) and NMBE (the in-sample ones when there
    is no validation part); EnPI Lite on the training fit's F-test, R² and coefficients.

    Examples
    --------
    >>> m = BaselineMetrics(r_squared=0.9, adj_r_squared=0.9, rmse=1.0, mae=1.0, cv_rmse=20.0,
    ...     nmbe=0.0, f_pvalue=0.001, coef_pvalues={"intercept": 0.5, "production": 0.01},
    ...     training_samples=100, validation_samples=30, r_squared_validation=0.8,
    ...     rmse_validation=1.0, mae_validation=1.0, cv_rmse_validation=20.0,
    ...     nmbe_validation=-7.0, data_coverage=1.0)
    >>> acceptance(m, "hourly")
    (True, [])
    >>> ok, reasons = acceptance(m, "monthly")
    >>> ok
    False
    >>> for reason in reasons:
    ...     print(reason)
    CV(RMSE) 20.0 % exceeds 15 % (ASHRAE Guideline 14, monthly; validation)
    NMBE -7.0 % is outside ±5 % (ASHRAE Guideline 14, monthly; validation)
    """
    if interval not in G14_LIMITS:
        msg = f"unknown interval {interval!r} (known: {', '.join(G14_LIMITS)})"
        raise ValueError(msg)
    max_cv, max_nmbe = G14_LIMITS[interval]
    if metrics.cv_rmse_validation is not None:
        cv, nmbe, part = metrics.cv_rmse_validation, metrics.nmbe_validation, "validation"
    else:
        cv, nmbe, part = metrics.cv_rmse, metrics.nmbe, "in-sample"
    g14 = f"(ASHRAE Guideline 14, {interval}; {part})"
    reasons: list[str] = []
    if not cv <= max_cv:
        reasons.append(f"CV(RMSE) {_pct(cv)} exceeds {max_cv:g} % {g14}")
    if nmbe is None or not abs(nmbe) <= max_nmbe:
        reasons.append(f"NMBE {_pct(nmbe, sign=True)} is outside ±{max_nmbe:g} % {g14}")
    if not metrics.f_pvalue < ENPI_MAX_F_PVALUE:
        drivers = "" if len(metrics.coef_pvalues) > 1 else "; the model has no driver"
        reasons.append(f"F-test p-value {metrics.f_pvalue:.3g} is not below "
                       f"{ENPI_MAX_F_PVALUE:.2f}{drivers} (EnPI Lite model validity)")
    if not metrics.r_squared >= ENPI_MIN_R_SQUARED:
        r2 = f"{metrics.r_squared:.2f}".replace("-0.00", "0.00")
        reasons.append(f"R² {r2} is below {ENPI_MIN_R_SQUARED} "
                       "(EnPI Lite model validity)")
    for name, p in metrics.coef_pvalues.items():
        if name != "intercept" and not p < ENPI_MAX_COEF_PVALUE:
            reasons.append(f"coefficient of {name} has p-value {p:.3g}, not below "
                           f"{ENPI_MAX_COEF_PVALUE} (EnPI Lite variable rule)")
    return not reasons, reasons


def _pct(v: float | None, *, sign: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "undefined (mean energy 0 or too few rows)"
    return f"{v:+.1f} %" if sign and v > 0 else f"{v:.1f} %"


# --------------------------------------------------------------------------- least squares


@dataclass
class _Fit:
    """One fitted candidate."""

    name: str
    names: list[str]
    beta: np.ndarray  # intercept first
    bp: dict[str, float]
    n_params: int
    insample: dict[str, float]
    validation: dict[str, float]
    f_pvalue: float
    coef_pvalues: dict[str, float]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Spec:
    name: str
    fixed: tuple[str, ...]
    heating: bool = False
    cooling: bool = False


def _prune(x: np.ndarray, names: Sequence[str]) -> tuple[list[int], list[str]]:
    """Columns to keep (besides the intercept): drop constant and collinear ones, say why."""
    keep: list[int] = []
    notes: list[str] = []
    n = x.shape[0]
    basis = [np.full(n, 1.0 / math.sqrt(n))]
    for j, name in enumerate(names):
        col = x[:, j]
        if np.ptp(col) == 0:
            notes.append(f"{name} dropped: constant ({col[0]:g}) in the training rows")
            continue
        centred = col - col.mean()
        r = col.copy()
        for _ in range(2):  # Gram-Schmidt, twice for stability
            for q in basis:
                r -= (q @ r) * q
        if np.linalg.norm(r) <= 1e-6 * np.linalg.norm(centred):
            kept = ", ".join(["intercept", *(names[i] for i in keep)])
            notes.append(f"{name} dropped: collinear with {kept}")
            continue
        basis.append(r / np.linalg.norm(r))
        keep.append(j)
    return keep, notes


def _ols(x1: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Coefficients, their two-sided t-test p-values, and the F-test p-value (x1 has the
    intercept column first)."""
    n, q = x1.shape
    beta, *_ = np.linalg.lstsq(x1, y, rcond=None)
    resid = y - x1 @ beta
    sse = float(resid @ resid)
    sst = float(((y - y.mean()) ** 2).sum())
    dof = n - q
    sigma2 = sse / dof
    cov = sigma2 * np.linalg.pinv(x1.T @ x1)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, np.abs(beta) / se, np.inf)
    pvalues = 2.0 * stats.t.sf(t, dof)
    k = q - 1
    if k == 0:
        f_p = 1.0
    elif sse <= 0:
        f_p = 0.0
    else:
        f_stat = ((sst - sse) / k) / sigma2
        f_p = float(stats.f.sf(f_stat, k, dof))
    return beta, pvalues, f_p


def _grid(lo: float, hi: float, step: float) -> np.ndarray:
    return np.round(np.arange(lo, hi + step / 2, step), 6)


def _search(
    q: np.ndarray, y: np.ndarray, temp: np.ndarray, spec: _Spec, grid: np.ndarray,
    cgrid: np.ndarray | None = None,
) -> tuple[float | None, float | None]:
    """Best balance points on a grid by least squares, given the fixed columns' basis ``q``.

    Every grid point's fit is closed-form after projecting out the fixed columns: one matrix
    product for all points (3P) or all pairs (5P).
    """
    cgrid = grid if cgrid is None else cgrid
    n = len(y)
    min_side = max(10, math.ceil(0.02 * n))
    yr = y - q @ (q.T @ y)

    def project(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        res = raw - q @ (q.T @ raw)
        den = np.einsum("ij,ij->j", res, res)
        return res, den, den > 1e-8 * np.einsum("ij,ij->j", raw, raw)

    below = (temp[:, None] < grid[None, :]).sum(axis=0)
    above = (temp[:, None] > cgrid[None, :]).sum(axis=0)
    if spec.heating and spec.cooling:
        hr, a, hok = project(np.maximum(0.0, grid[None, :] - temp[:, None]))
        cr, b, cok = project(np.maximum(0.0, temp[:, None] - cgrid[None, :]))
        u, v, c = hr.T @ yr, cr.T @ yr, hr.T @ cr
        det = a[:, None] * b[None, :] - c * c
        with np.errstate(divide="ignore", invalid="ignore"):
            bh = (b[None, :] * u[:, None] - c * v[None, :]) / det
            bc = (a[:, None] * v[None, :] - c * u[:, None]) / det
            gain = bh * u[:, None] + bc * v[None, :]
        ok = ((grid[:, None] <= cgrid[None, :]) & (hok & (below >= min_side))[:, None]
              & (cok & (above >= min_side))[None, :] & (det > 1e-9 * a[:, None] * b[None, :])
              & (bh > 0) & (bc > 0))
        gain = np.where(ok, gain, -np.inf)
        i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
        if not np.isfinite(gain[i, j]):
            return None, None
        return float(grid[i]), float(cgrid[j])
    g = grid if spec.heating else cgrid
    raw = (np.maximum(0.0, g[None, :] - temp[:, None]) if spec.heating
           else np.maximum(0.0, temp[:, None] - g[None, :]))
    active = below if spec.heating else above
    res, den, dok = project(raw)
    num = res.T @ yr
    ok = dok & (active >= min_side) & (n - active >= min_side) & (num > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(ok, num * num / den, -np.inf)
    k = int(np.argmax(gain))
    if not np.isfinite(gain[k]):
        return None, None
    return (float(g[k]), None) if spec.heating else (None, float(g[k]))


def _balance_points(
    q: np.ndarray, y: np.ndarray, temp: np.ndarray, spec: _Spec
) -> dict[str, float] | None:
    """Coarse grid, then a 0.1 deg C grid around the best point."""
    lo, hi, step = BALANCE_GRID_C
    th, tc = _search(q, y, temp, spec, _grid(lo, hi, step))
    if th is None and tc is None:
        return None

    def fine(centre: float | None) -> np.ndarray:
        c = lo if centre is None else centre
        return _grid(max(lo, c - step), min(hi, c + step), step / 5)

    th2, tc2 = _search(q, y, temp, spec, fine(th), fine(tc))
    th, tc = (th2, tc2) if (th2 is not None or tc2 is not None) else (th, tc)
    out: dict[str, float] = {}
    if spec.heating and th is not None:
        out["heating_c"] = th
    if spec.cooling and tc is not None:
        out["cooling_c"] = tc
    return out


def _fit_candidate(spec: _Spec, train: _Table, valid: _Table, interval: str) -> _Fit | str:
    """Fit one candidate on `train`, score it on `valid`; a string says why it was skipped."""
    n = len(train)
    x_fixed = _design(train, spec.fixed, {})
    keep, notes = _prune(x_fixed, spec.fixed)
    fixed = [spec.fixed[i] for i in keep]
    x1 = np.column_stack([np.ones(n), x_fixed[:, keep]])
    names = list(fixed)
    bp: dict[str, float] = {}
    if spec.heating or spec.cooling:
        q, _ = np.linalg.qr(x1)
        found = _balance_points(q, train.y, train.temp, spec)
        if found is None:
            return (f"no balance point in {BALANCE_GRID_C[0]:g}-{BALANCE_GRID_C[1]:g} °C gives "
                    "a positive slope with enough rows on each side")
        bp = found
        hname, cname = _DEGREE[interval]
        degree = ([hname] if spec.heating else []) + ([cname] if spec.cooling else [])
        x_deg = _design(train, degree, bp)
        k2, notes2 = _prune(np.column_stack([x1[:, 1:], x_deg]), [*names, *degree])
        if len(k2) < len(names) + len(degree):
            return "degree term collinear with the other columns: " + "; ".join(notes2)
        x1 = np.column_stack([x1, x_deg])
        names += degree
    if n - x1.shape[1] < 2:
        return f"too few training rows ({n}) for {x1.shape[1]} coefficients"
    beta, pvalues, f_p = _ols(x1, train.y)
    n_params = x1.shape[1] + len(bp)
    insample = goodness_of_fit(train.y, x1 @ beta, n_params)
    xv = np.column_stack([np.ones(len(valid)), _design(valid, names, bp)])
    validation = goodness_of_fit(valid.y, xv @ beta, 0)
    name = spec.name
    if spec.heating and spec.cooling and bp["heating_c"] == bp["cooling_c"]:
        name = name.replace("5P", "4P")
    return _Fit(name=name, names=names, beta=beta, bp=bp, n_params=n_params,
                insample=insample, validation=validation, f_pvalue=f_p,
                coef_pvalues=dict(zip(["intercept", *names], map(float, pvalues), strict=True)),
                notes=notes)


def _specs(available: set[str], interval: str) -> list[_Spec]:
    prod = ("production",) if "production" in available else ()
    tow = ("weekend", "shift") if interval == "hourly" else ("weekend",)
    forms = [_Spec("production", prod)] if prod else []
    if "outdoor_temp" in available:
        forms += [_Spec("3P-heating", prod, heating=True), _Spec("3P-cooling", prod, cooling=True),
                  _Spec("5P", prod, heating=True, cooling=True)]
    out = [_Spec("mean", ()), *forms]
    if "time_of_week" in available:
        if not prod:
            out.append(_Spec("tow", tow))
        out += [_Spec(f"{s.name}+tow", s.fixed + tow, s.heating, s.cooling) for s in forms]
    return out


def _choose(fits: list[_Fit]) -> _Fit:
    """Lowest validation CV(RMSE); near-ties go to the fewest parameters."""
    scored = [f for f in fits if math.isfinite(f.validation["cv_rmse"])]
    if not scored:
        return min(fits, key=lambda f: f.n_params)
    best = min(f.validation["cv_rmse"] for f in scored)
    tied = [f for f in scored if f.validation["cv_rmse"] <= best * (1 + _TIE_REL) + _TIE_ABS]
    return min(tied, key=lambda f: (f.n_params, f.validation["cv_rmse"]))


# --------------------------------------------------------------------------- fitting


def fit_baseline(
    rows: Iterable[Any],
    *,
    machine_id: str,
    version: int,
    model_id: str,
    training_job_id: str,
    trained_at: datetime,
    drivers: Iterable[str] | None = None,
    holdout: float = 0.25,
    interval: str = "hourly",
    progress: Progress | None = None,
    min_coverage: float = 0.8,
) -> BaselineModel:
    """Fit, compare and validate the candidate baselines of one machine; return the winner.

    Parameters
    ----------
    rows
        `EnergyHourly` records (or mappings with the same keys) of `machine_id`, any order;
        a row of another machine is a ValueError. For the same ``hour_start`` the last row
        wins (replays deliver duplicates). Daily rows come from `aggregate_daily`.
    machine_id, version, model_id, training_job_id, trained_at
        Copied into the model; `trained_at` must be tz-aware (the core reads no clock).
    drivers
        Driver groups the model may use, from `DRIVERS`; None: all that the rows carry (a
        driver present in fewer than 90 % of the usable rows is not used).
    holdout
        Share of the rows (the latest ones) kept for validation, in (0, 0.5].
    interval
        ``"hourly"`` or ``"daily"``: the rows' length; Guideline 14 limits follow it.
    progress
        Called as ``progress(stage, percent, message)`` after ``"features_built"``,
        ``"candidates_fitted"`` and ``"validated"``.
    min_coverage
        Rows whose ``coverage`` is below this are left out (their energy is partial).

    Returns
    -------
    BaselineModel
        The chosen candidate, fitted on the training part (see the module docstring):
        ``training_start``/``training_end`` bound that part (end exclusive); the validation
        part follows it. ``accepted``/``reasons`` come from `acceptance`; ``candidates``
        summarises every candidate (``skipped`` says why one could not be fitted).

    Raises
    ------
    InsufficientData
        Fewer than ``MIN_ROWS[interval]`` usable rows, or energy that does not vary.

    Examples
    --------
    >>> import numpy as np
    >>> t0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
    >>> rng = np.random.default_rng(0)
    >>> rows = []
    >>> for h in range(24 * 21):
    ...     units = 100.0 if 6 <= h % 24 < 22 else 0.0
    ...     temp = 12 + 6 * np.sin(h / 24 * 2 * np.pi)
    ...     kwh = 5 + 0.2 * units + 1.5 * max(0, 14 - temp) + rng.normal(0, 0.3)
    ...     rows.append(EnergyHourly(machine_id="m", hour_start=t0 + timedelta(hours=h),
    ...         energy_kwh=kwh, readings=120, coverage=1.0, mean_power_kw=kwh,
    ...         max_power_kw=kwh, production_count=units, outdoor_temp_c=float(temp)))
    >>> stages = []
    >>> model = fit_baseline(rows, machine_id="m", version=1, model_id="b1",
    ...     training_job_id="job-1", trained_at=t0 + timedelta(days=21),
    ...     progress=lambda stage, pct, msg: stages.append(stage))
    >>> stages
    ['features_built', 'candidates_fitted', 'validated']
    >>> model.kind, model.feature_names, model.accepted
    ('3P-heating', ['production', 'hdh'], True)
    >>> round(model.coefficients["production"], 2), round(model.balance_points["heating_c"])
    (0.2, 14)
    >>> model.metrics.training_samples, model.metrics.validation_samples
    (378, 126)
    """
    if interval not in _ROW_SECONDS:
        msg = f"fit_baseline interval must be 'hourly' or 'daily', got {interval!r}"
        raise ValueError(msg)
    if not 0 < holdout <= 0.5:
        msg = f"holdout must be in (0, 0.5], got {holdout}"
        raise ValueError(msg)
    if trained_at.tzinfo is None or trained_at.utcoffset() is None:
        msg = "trained_at must be timezone-aware"
        raise ValueError(msg)
    allowed = set(DRIVERS) if drivers is None else set(drivers)
    unknown = sorted(allowed - set(DRIVERS))
    if unknown:
        msg = f"unknown drivers {unknown} (known: {', '.join(DRIVERS)})"
        raise ValueError(msg)
    report = progress if progress is not None else (lambda stage, pct, message: None)

    table, span = _usable(rows, machine_id, interval, min_coverage)
    available = {"time_of_week"} & allowed
    for group, col in (("production", table.production), ("outdoor_temp", table.temp)):
        if group in allowed and len(table) and np.isfinite(col).mean() >= MIN_DRIVER_SHARE:
            available.add(group)
    keep = np.ones(len(table), dtype=bool)
    if "production" in available:
        keep &= np.isfinite(table.production)
    if "outdoor_temp" in available:
        keep &= np.isfinite(table.temp)
    table = table.take(keep)
    n = len(table)
    if n < MIN_ROWS[interval]:
        msg = (f"{n} usable {interval} rows for {machine_id}; at least {MIN_ROWS[interval]} "
               f"are needed (rows need coverage >= {min_coverage} and their drivers)")
        raise InsufficientData(msg)
    if np.ptp(table.y) == 0:
        msg = f"energy of {machine_id} does not vary ({table.y[0]:g} kWh in every row)"
        raise InsufficientData(msg)
    coverage = n / span
    used = ", ".join(d for d in DRIVERS if d in available) or "none"
    report("features_built", 25.0,
           f"{n} usable {interval} rows of {span} in the window ({100 * coverage:.1f} %); "
           f"drivers: {used}")

    n_valid = max(1, round(holdout * n))
    train, valid = table.take(slice(0, n - n_valid)), table.take(slice(n - n_valid, n))
    if np.ptp(train.y) == 0:
        msg = f"energy of {machine_id} does not vary in the training part"
        raise InsufficientData(msg)
    fits: list[_Fit] = []
    summary: list[dict[str, float | str]] = []
    for spec in _specs(available, interval):
        fit = _fit_candidate(spec, train, valid, interval)
        if isinstance(fit, str):
            summary.append({"name": spec.name, "skipped": fit})
            continue
        fits.append(fit)
        entry: dict[str, float | str] = {
            "name": fit.name, "parameters": float(fit.n_params),
            "r_squared": fit.insample["r_squared"], "cv_rmse": fit.insample["cv_rmse"],
            "cv_rmse_validation": fit.validation["cv_rmse"],
            "nmbe_validation": fit.validation["nmbe"], **fit.bp}
        if fit.notes:
            entry["note"] = "; ".join(fit.notes)
        summary.append(entry)
    report("candidates_fitted", 75.0,
           f"{len(fits)} candidates fitted on {len(train)} training rows "
           f"({len(summary) - len(fits)} skipped)")

    best = _choose(fits)
    metrics = BaselineMetrics(
        r_squared=best.insample["r_squared"], adj_r_squared=best.insample["adj_r_squared"],
        rmse=best.insample["rmse"], mae=best.insample["mae"], cv_rmse=best.insample["cv_rmse"],
        nmbe=best.insample["nmbe"], f_pvalue=best.f_pvalue, coef_pvalues=best.coef_pvalues,
        training_samples=len(train), validation_samples=len(valid),
        r_squared_validation=best.validation["r_squared"],
        rmse_validation=best.validation["rmse"], mae_validation=best.validation["mae"],
        cv_rmse_validation=best.validation["cv_rmse"], nmbe_validation=best.validation["nmbe"],
        data_coverage=coverage, interval=interval,
    )
    accepted, reasons = acceptance(metrics, interval)
    report("validated", 100.0,
           f"chose {best.name}: validation CV(RMSE) {_pct(metrics.cv_rmse_validation)}, "
           f"NMBE {_pct(metrics.nmbe_validation, sign=True)}; "
           + ("accepted" if accepted else "rejected: " + "; ".join(reasons)))
    step = timedelta(seconds=_ROW_SECONDS[interval])
    return BaselineModel(
        model_id=model_id, machine_id=machine_id, version=version, kind=best.name,
        feature_names=best.names,
        coefficients={k: float(b) for k, b in zip(best.names, best.beta[1:], strict=True)},
        intercept=float(best.beta[0]), balance_points=best.bp, metrics=metrics,
        accepted=accepted, reasons=reasons, candidates=summary,
        training_start=datetime.fromtimestamp(float(train.t[0]), tz=UTC),
        training_end=datetime.fromtimestamp(float(train.t[-1]), tz=UTC) + step,
        trained_at=trained_at, training_job_id=training_job_id,
    )


def _usable(
    rows: Iterable[Any], machine_id: str, interval: str, min_coverage: float
) -> tuple[_Table, int]:
    """Rows of one machine, deduplicated by start and sorted; and the window's row count."""
    by_start: dict[datetime, Any] = {}
    for r in rows:
        mid = _get(r, "machine_id")
        if mid is not None and mid != machine_id:
            msg = f"a row of machine {mid!r} was passed to the baseline of {machine_id!r}"
            raise ValueError(msg)
        by_start[_get(r, "hour_start")] = r
    if not by_start:
        msg = f"no rows for {machine_id}"
        raise InsufficientData(msg)
    table = _table(list(by_start.values()), interval)
    table = table.take(np.argsort(table.t, kind="stable"))
    span = int(round((table.t[-1] - table.t[0]) / _ROW_SECONDS[interval])) + 1
    ok = (table.coverage >= min_coverage) & np.isfinite(table.y) & (table.y >= 0)
    return table.take(ok), span


# --------------------------------------------------------------------------- prediction


def _model_interval(model: BaselineModel) -> str:
    return model.metrics.interval if model.metrics.interval in _ROW_SECONDS else "hourly"


def features_of(model: BaselineModel, row: Any, *, missing_as_zero: bool = False) -> np.ndarray:
    """The model's feature values for one row, in ``model.feature_names`` order.

    Raises ValueError when the row lacks a driver the model uses, unless `missing_as_zero`:
    then that driver's features are 0 (its terms drop out of the prediction).

    Examples
    --------
    >>> m = _example_model()
    >>> row = {"hour_start": datetime(2026, 3, 7, 9, tzinfo=UTC),  # a Saturday
    ...        "production_count": 50.0, "outdoor_temp_c": 10.0}
    >>> m.feature_names, features_of(m, row).tolist()
    (['production', 'hdh', 'weekend'], [50.0, 5.0, 1.0])
    >>> features_of(m, {**row, "outdoor_temp_c": None}, missing_as_zero=True).tolist()
    [50.0, 0.0, 1.0]
    """
    table = _table([row], _model_interval(model))
    x: np.ndarray = _design(table, model.feature_names, model.balance_points)[0]
    if missing_as_zero:
        zeroed: np.ndarray = np.nan_to_num(x, nan=0.0)
        return zeroed
    missing = [name for name, v in zip(model.feature_names, x, strict=True) if not np.isfinite(v)]
    if missing:
        msg = f"row at {_get(row, 'hour_start')} lacks the drivers of {missing}"
        raise ValueError(msg)
    return x


def predict(model: BaselineModel, row: Any, *, missing_as_zero: bool = False) -> float:
    """Expected energy (kWh) of one row (a full hour, or day for daily models); never below 0.

    A row lacking a driver the model uses is a ValueError, or with `missing_as_zero` that
    driver's terms count as 0 (see `features_of`).

    Examples
    --------
    >>> m = _example_model()  # 4 + 0.2 production + 1.5 hdh(15 °C) + 2 weekend
    >>> row = {"hour_start": datetime(2026, 3, 7, 9, tzinfo=UTC),
    ...        "production_count": 50.0, "outdoor_temp_c": 10.0}
    >>> predict(m, row)
    23.5
    """
    x = features_of(model, row, missing_as_zero=missing_as_zero)
    coefs = np.array([model.coefficients[name] for name in model.feature_names])
    return max(0.0, model.intercept + float(coefs @ x))


def predict_many(
    model: BaselineModel, rows: Iterable[Any], *, missing_as_zero: bool = False
) -> np.ndarray:
    """Expected energy (kWh) of many rows, floored at 0; NaN where a row lacks a driver.

    With `missing_as_zero` a missing driver's terms count as 0 instead of giving NaN.

    Examples
    --------
    >>> m = _example_model()
    >>> t = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday
    >>> predict_many(m, [{"hour_start": t, "production_count": 0.0, "outdoor_temp_c": 20.0},
    ...                  {"hour_start": t, "production_count": 10.0}]).tolist()
    [4.0, nan]
    """
    rows = list(rows)
    if not rows:
        return np.empty(0)
    table = _table(rows, _model_interval(model))
    x = _design(table, model.feature_names, model.balance_points)
    if missing_as_zero:
        x = np.nan_to_num(x, nan=0.0)
    coefs = np.array([model.coefficients[name] for name in model.feature_names])
    out: np.ndarray = np.maximum(0.0, model.intercept + x @ coefs)
    return out


def _example_model() -> BaselineModel:
    """A hand-made model for the examples: 4 + 0.2 production + 1.5 hdh(15 °C) + 2 weekend."""
    t = datetime(2026, 3, 1, tzinfo=UTC)
    metrics = BaselineMetrics(
        r_squared=0.9, adj_r_squared=0.9, rmse=1.0, mae=1.0, cv_rmse=5.0, nmbe=0.0,
        f_pvalue=0.0, coef_pvalues={}, training_samples=100, validation_samples=30,
        r_squared_validation=0.9, rmse_validation=1.0, mae_validation=1.0,
        cv_rmse_validation=5.0, nmbe_validation=0.0, data_coverage=1.0)
    return BaselineModel(
        model_id="example", machine_id="m", version=1, kind="3P-heating+tow",
        feature_names=["production", "hdh", "weekend"],
        coefficients={"production": 0.2, "hdh": 1.5, "weekend": 2.0}, intercept=4.0,
        balance_points={"heating_c": 15.0}, metrics=metrics, accepted=True,
        training_start=t, training_end=t, trained_at=t, training_job_id="example")


# --------------------------------------------------------------------------- daily rows


def aggregate_daily(rows: Iterable[Any]) -> list[EnergyHourly]:
    """Hourly rows -> one row per machine and UTC day, for ``fit_baseline(interval="daily")``.

    Sums: energy, readings, production (None if no hour had it). Means of the hours present:
    power, throughput and temperatures. ``coverage`` is the day's summed hourly coverage / 24,
    so a day with missing hours falls under ``min_coverage``. ``hour_start`` is midnight UTC.

    A daily model's degree terms use the day's mean temperature (degree-days), so a day
    whose mean is above the heating balance point still hides some heating in its cold hours:
    daily fits are coarser than hourly ones and their balance points and slopes are not the
    hourly ones.

    Examples
    --------
    >>> t = datetime(2026, 3, 2, tzinfo=UTC)
    >>> hours = [EnergyHourly(machine_id="m", hour_start=t + timedelta(hours=h),
    ...          energy_kwh=2.0, readings=4, coverage=1.0, mean_power_kw=2.0,
    ...          max_power_kw=3.0, production_count=1.0, outdoor_temp_c=float(h))
    ...          for h in range(36)]
    >>> [(d.hour_start.day, d.energy_kwh, d.coverage, d.outdoor_temp_c)
    ...  for d in aggregate_daily(hours)]
    [(2, 48.0, 1.0, 11.5), (3, 24.0, 0.5, 29.5)]
    """
    groups: dict[tuple[str, datetime], list[Any]] = {}
    for r in rows:
        start = _get(r, "hour_start").astimezone(UTC)
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        groups.setdefault((_get(r, "machine_id"), day), []).append(r)

    def mean(rs: list[Any], name: str) -> float | None:
        vals = [float(v) for r in rs if (v := _get(r, name)) is not None]
        return sum(vals) / len(vals) if vals else None

    out = []
    for (mid, day), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        counts = [float(v) for r in rs if (v := _get(r, "production_count")) is not None]
        out.append(EnergyHourly(
            machine_id=mid, hour_start=day,
            energy_kwh=sum(float(_get(r, "energy_kwh")) for r in rs),
            readings=sum(int(_get(r, "readings") or 0) for r in rs),
            coverage=min(1.0, sum(float(_get(r, "coverage") or 0.0) for r in rs) / 24),
            mean_power_kw=mean(rs, "mean_power_kw") or 0.0,
            max_power_kw=max(float(_get(r, "max_power_kw") or 0.0) for r in rs),
            production_count=sum(counts) if counts else None,
            throughput_units_per_hour=mean(rs, "throughput_units_per_hour"),
            outdoor_temp_c=mean(rs, "outdoor_temp_c"),
            machine_temp_c=mean(rs, "machine_temp_c"),
            pressure_bar=mean(rs, "pressure_bar"),
        ))
    return out
