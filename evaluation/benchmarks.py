"""``enms evaluate nab|skab``: score detectors on the public NAB and SKAB series.

The I/O shell around `detectors.nab` and `detectors.evaluation`: loads the files, runs the
configurations in `CONFIGS`, prints a table, writes a markdown report with PNG plots to
``--out`` and freezes the best configuration and its threshold in
``evaluation/configs/<benchmark>.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from detectors import nab
from detectors.base import AnomalyDetector
from detectors.evaluation import (
    PointwiseMetrics,
    best_f1_threshold,
    pointwise_metrics,
    run_detector,
    split_halves,
)
from detectors.univariate import AnomalyLikelihood, HotellingT2

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NabSeries:
    """One NAB file: timestamps, values and labels (windows as inclusive row ranges)."""

    name: str
    timestamps: list[datetime]
    values: np.ndarray
    labels: nab.FileLabels


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


def load_nab(root: Path) -> list[NabSeries]:
    """All files listed in ``combined_windows_dev.json`` under ``root/data``."""
    windows = json.loads((root / "combined_windows_dev.json").read_text())
    out = []
    for name in sorted(windows):
        with (root / "data" / name).open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        ts = [_parse_ts(r["timestamp"]) for r in rows]
        index = {t: i for i, t in enumerate(ts)}
        wins = tuple(
            (index[_parse_ts(a)], index[_parse_ts(b)]) for a, b in windows[name]
        )
        values = np.array([float(r["value"]) for r in rows])
        out.append(NabSeries(name, ts, values, nab.FileLabels(len(rows), tuple(sorted(wins)))))
    return out


@dataclass(frozen=True)
class SkabSeries:
    """One SKAB file: channel matrix, per-row labels and the channel names."""

    name: str
    columns: list[str]
    x: np.ndarray
    anomaly: np.ndarray


SKAB_TRAIN_ROWS = 400


def load_skab(root: Path) -> list[SkabSeries]:
    """Every ``*.csv`` below ``root`` (``;``-separated), sorted by relative path."""
    out = []
    for path in sorted(root.rglob("*.csv")):
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter=";"))
        cols = [c for c in rows[0] if c not in ("datetime", "anomaly", "changepoint")]
        x = np.array([[float(r[c]) for c in cols] for r in rows])
        y = np.array([float(r.get("anomaly") or 0.0) > 0.5 for r in rows])
        out.append(SkabSeries(str(path.relative_to(root)), cols, x, y))
    return out


# ---------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    """A named detector factory, its parameters and the alert hold (rows; 0 = none)."""

    name: str
    detector: str
    params: dict[str, Any]
    hold_rows: int = 0

    def make(self, **extra: Any) -> AnomalyDetector:
        """A fresh detector."""
        return DETECTOR_TYPES[self.detector](**self.params, **extra)


DETECTOR_TYPES: dict[str, Callable[..., AnomalyDetector]] = {
    "AnomalyLikelihood": AnomalyLikelihood,
    "HotellingT2": HotellingT2,
}

_LIK = {"feature": "value", "average": 20, "short": 20}
_LIK_MEAN = {**_LIK, "fast_half_life": 6.0, "scale": 8.0, "history": 3000, "combine": "mean"}
NAB_CONFIGS = [
    Config("likelihood_nohold", "AnomalyLikelihood", _LIK, hold_rows=0),
    Config("likelihood", "AnomalyLikelihood", _LIK, hold_rows=200),
    Config("likelihood_daily", "AnomalyLikelihood",
           {**_LIK, "period": 86400.0, "scale": 6.0}, hold_rows=200),
    Config("likelihood_weekly", "AnomalyLikelihood",
           {**_LIK, "period": 604800.0}, hold_rows=200),
    # Mean (not max) of the squashed surprise terms, wider squash, slower fast forecast,
    # longer history: see the AnomalyLikelihood docstring.
    Config("likelihood_mean_weekly", "AnomalyLikelihood",
           {**_LIK_MEAN, "period": 604800.0}, hold_rows=200),
    Config("likelihood_mean_daily", "AnomalyLikelihood",
           {**_LIK_MEAN, "period": 86400.0}, hold_rows=200),
]
_SKAB_ALL = ("Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure", "Temperature",
             "Thermocouple", "Voltage", "Volume Flow RateRMS")
_SKAB_NO_TEMP = tuple(c for c in _SKAB_ALL if c not in ("Temperature", "Thermocouple"))
SKAB_CONFIGS = [
    Config("t2_all", "HotellingT2", {"features": _SKAB_ALL, "fit_rows": SKAB_TRAIN_ROWS}),
    Config("t2_no_temperatures", "HotellingT2",
           {"features": _SKAB_NO_TEMP, "fit_rows": SKAB_TRAIN_ROWS}),
]


def _nab_halves(names: Sequence[str]) -> tuple[list[str], list[str]]:
    return split_halves(names, group=lambda n: n.split("/")[0])


# ---------------------------------------------------------------------------------------
# NAB
# ---------------------------------------------------------------------------------------
def nab_scores(cfg: Config, series: Sequence[NabSeries]) -> list[np.ndarray]:
    """One online pass of a fresh detector per file (value and epoch seconds ``t``)."""
    out = []
    for s in series:
        xs = ({"value": float(v), "t": t.timestamp()} for v, t in zip(s.values, s.timestamps,
                                                                       strict=True))
        out.append(run_detector(cfg.make(), xs))
    return out


def _detections(scores: np.ndarray, threshold: float, hold_rows: int) -> np.ndarray:
    from detectors.evaluation import hold

    return hold(scores, threshold, hold_rows) if hold_rows else scores >= threshold


def nab_raw(scores: Sequence[np.ndarray], labels: Sequence[nab.FileLabels],
            profile: nab.Profile, threshold: float, hold_rows: int) -> float:
    """Raw NAB score of a corpus at θ, with the alert hold applied."""
    return sum(nab.score_detections(_detections(s, threshold, hold_rows), f, profile)
               for s, f in zip(scores, labels, strict=True))


def nab_sweep(scores: Sequence[np.ndarray], labels: Sequence[nab.FileLabels],
              profile: nab.Profile, hold_rows: int, grid: int = 400) -> nab.Sweep:
    """Best θ: exact over distinct values without a hold; with one (detections are then not
    monotone in θ) over ``grid`` quantiles of the top 10 % of positive scores."""
    if not hold_rows:
        return nab.sweep(scores, labels, profile)
    pooled = np.concatenate(scores)
    pos = pooled[pooled > 0]
    best = nab.Sweep(float("inf"), nab.null_score(labels, profile), 0.0)
    if pos.size == 0:
        return best
    for th in np.unique(np.quantile(pos, np.linspace(0.9, 1.0, grid))):
        raw = nab_raw(scores, labels, profile, float(th), hold_rows)
        if raw > best.raw + 1e-12:
            best = nab.Sweep(float(th), raw, nab.normalised(raw, labels, profile))
    return best


@dataclass(frozen=True)
class NabResult:
    """Scores of one configuration: per profile optimised and frozen-threshold results."""

    config: Config
    scores: list[np.ndarray]
    optimised: dict[str, nab.Sweep]
    frozen: dict[str, float]
    frozen_thresholds: dict[str, tuple[float, float]]
    seconds: float


def evaluate_nab(cfg: Config, series: Sequence[NabSeries]) -> NabResult:
    """Run one configuration and score it for every profile, optimised and frozen."""
    t0 = time.perf_counter()
    scores = nab_scores(cfg, series)
    seconds = time.perf_counter() - t0
    labels = [s.labels for s in series]
    names = [s.name for s in series]
    half_a, half_b = _nab_halves(names)
    ia = [i for i, n in enumerate(names) if n in set(half_a)]
    ib = [i for i, n in enumerate(names) if n in set(half_b)]
    opt, frozen, fth = {}, {}, {}
    for pname, prof in nab.PROFILES.items():
        opt[pname] = nab_sweep(scores, labels, prof, cfg.hold_rows)
        th_a = nab_sweep([scores[i] for i in ia], [labels[i] for i in ia], prof,
                         cfg.hold_rows).threshold
        th_b = nab_sweep([scores[i] for i in ib], [labels[i] for i in ib], prof,
                         cfg.hold_rows).threshold
        raw = (nab_raw([scores[i] for i in ib], [labels[i] for i in ib], prof, th_a,
                       cfg.hold_rows)
               + nab_raw([scores[i] for i in ia], [labels[i] for i in ia], prof, th_b,
                         cfg.hold_rows))
        frozen[pname] = nab.normalised(raw, labels, prof)
        fth[pname] = (th_a, th_b)
    return NabResult(cfg, scores, opt, frozen, fth, seconds)


def _plot_nab(s: NabSeries, scores: np.ndarray, threshold: float, hold_rows: int,
              path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    det = _detections(scores, threshold, hold_rows)
    det[: s.labels.probation] = False
    x = np.arange(len(s.values))
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(12, 5), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    _series_panel(ax, s, det, "value", "detection")
    ax.set_title(s.name)
    ax2.plot(x, scores, lw=0.6, color="tab:purple")
    ax2.axhline(threshold, color="red", ls="--", lw=0.8)
    ax2.set_ylabel("score")
    ax2.set_xlabel("row")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _series_panel(ax: Any, s: NabSeries, det: np.ndarray, value: str, hit: str) -> None:
    """One NAB file's values, probation, labelled windows and detections on ``ax``."""
    ax.plot(np.arange(len(s.values)), s.values, lw=0.6, color="tab:blue", label=value)
    ax.axvspan(0, s.labels.probation, color="0.85", label="probation (not scored)")
    for k, (lo, hi) in enumerate(s.labels.windows):
        ax.axvspan(lo, hi, color="tab:orange", alpha=0.3,
                   label="labelled window" if k == 0 else None)
    hits = np.flatnonzero(det)
    ax.scatter(hits, s.values[hits], color="red", zorder=3, s=30, marker="v", label=hit)
    ax.legend(loc="upper left", fontsize=8)


NAB_PLOTS = (
    "artificialWithAnomaly/art_daily_jumpsdown.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "realTraffic/TravelTime_387.csv",
    "realTweets/Twitter_volume_AAPL.csv",
)


def _fmt(v: float) -> str:
    return "inf" if v == float("inf") else f"{v:.4f}"


def run_nab(data: Path, out: Path, only: str | None) -> int:
    """The product's detector on NAB (`evaluation.nab_product`), or with ``only`` one of
    the standalone reference configurations (`NAB_CONFIGS`, not what the worker runs)."""
    if only is None:
        return run_nab_product(data, out)
    return run_nab_reference(data, out, only)


def run_nab_product(data: Path, out: Path) -> int:
    """`MachineScorer` on every NAB file at every grid threshold: print, plot, report and
    freeze the chosen threshold in ``evaluation/configs/nab.json``."""
    from detectors.scoring import ScoringConfig
    from evaluation import nab_product

    series = load_nab(data)
    labels = [s.labels for s in series]
    halves = _nab_halves([s.name for s in series])
    result = nab_product.evaluate(series, ScoringConfig(), halves)
    profiles = list(nab.PROFILES)
    print(f"{'MachineScorer':22s}" + "".join(f" {p + ' opt':>19s} {p + ' frozen':>22s}"
                                            for p in profiles))
    print(f"{'power-only meters':22s}" + "".join(
        f" {result.optimised[p][1]:19.1f} {result.frozen[p]:22.1f}" for p in profiles))
    out.mkdir(parents=True, exist_ok=True)
    th = result.optimised["standard"][0]
    dets = result.detections[th]
    names = [s.name for s in series]
    for name in NAB_PLOTS:
        if name in names:
            i = names.index(name)
            _plot_openings(series[i], dets[i], out / (Path(name).stem + ".png"))
    _write_product_report(out, series, result, labels, halves)
    nab_product.save(result, CONFIG_DIR / "nab.json")
    return 0


def _plot_openings(s: NabSeries, det: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    det = det.copy()
    det[: s.labels.probation] = False
    fig, ax = plt.subplots(figsize=(12, 3.6))
    _series_panel(ax, s, det, "value (as power_kw)", f"episode opened ({int(det.sum())})")
    ax.set_title(f"{s.name}: MachineScorer, power-only meter")
    ax.set_xlabel("row")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _write_product_report(out: Path, series: Sequence[NabSeries], result: Any,
                          labels: Sequence[nab.FileLabels],
                          halves: tuple[list[str], list[str]]) -> None:
    profiles = list(nab.PROFILES)
    th = result.optimised["standard"][0]
    lines = [
        "# NAB evaluation: the product's detector", "",
        f"{len(series)} files, {sum(len(f.windows) for f in labels)} windows, "
        f"{sum(f.n_rows for f in labels)} rows. Generated by `enms evaluate nab --data "
        "../shared/data/nab` in "
        f"{result.seconds:.0f} s ({len(result.detections)} thresholds × every file).", "",
        "Each file is a meter with power only, scored by `detectors.scoring.MachineScorer."
        "step` with the worker's `ScoringConfig` (`evaluation/nab_product.py`): time-of-week "
        "profile, anomaly likelihood, the adaptive stuck-meter test, the sustained test, "
        "episodes with their hold. A detection is an episode opening: what a user is alerted "
        "to. Scoring: `detectors/nab.py` (numenta/NAB's rules).", "",
        "*Optimised*: the best of the grid "
        f"({', '.join(f'{g:g}' for g in result.detections)}) of "
        "`power_only_threshold` on all files. *Frozen*: the best on half A scores half B "
        "and vice versa (halves alternate within each category): the honest number.", "",
        "| profile | optimised | frozen | θ (all files) | θ from half A | θ from half B |",
        "|---|---|---|---|---|---|",
    ]
    for p in profiles:
        a, b = result.frozen_thresholds[p]
        lines.append(f"| {p} | {result.optimised[p][1]:.1f} | {result.frozen[p]:.1f} | "
                     f"{result.optimised[p][0]:g} | {a:g} | {b:g} |")
    lines += [
        "", f"`ScoringConfig.power_only_threshold` = {th:g} (standard, all files) is frozen "
        "in `evaluation/configs/nab.json` and is the worker's default.", "",
        "## Published scores on these 36 files (threshold optimised)", "",
        "| detector | standard | reward_low_FP | reward_low_FN |", "|---|---|---|---|",
        "| ARTime | 78.1 | 70.6 | 83.4 |", "| contextOSE | 74.0 | 71.2 | 77.0 |",
        "| Numenta HTM | 72.2 | 65.3 | 76.3 |",
        "| **MachineScorer (this)** | " + " | ".join(
            f"{result.optimised[p][1]:.1f}" for p in profiles) + " |",
        "", "## Per file (standard, θ optimised on all files)", "",
        "| file | half | windows | episodes opened | raw score |", "|---|---|---|---|---|",
    ]
    dets = result.detections[th]
    for s, d in zip(series, dets, strict=True):
        d = d.copy()
        d[: s.labels.probation] = False
        half = "A" if s.name in halves[0] else "B"
        lines.append(f"| {s.name} | {half} | {len(s.labels.windows)} | {int(d.sum())} | "
                     f"{nab.score_detections(d, s.labels, nab.STANDARD):.2f} |")
    lines += ["", "## Plots", "", "Blue: the value, fed as power; orange: labelled windows; "
              "grey: probation; red triangles: episode openings at the standard threshold.", ""]
    lines += [f"![{n}]({Path(n).stem}.png)" for n in NAB_PLOTS
              if (out / (Path(n).stem + ".png")).exists()]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def run_nab_reference(data: Path, out: Path, only: str) -> int:
    """Evaluate one reference configuration (``all``: every one), print and report (in
    ``out``/reference); nothing is frozen: the worker does not run these."""
    series = load_nab(data)
    out = out / "reference"
    configs = [c for c in NAB_CONFIGS if only in ("all", c.name)]
    if not configs:
        log.error("unknown config %s", only)
        return 2
    results = [evaluate_nab(c, series) for c in configs]
    profiles = list(nab.PROFILES)
    head = f"{'config':22s}" + "".join(f" {p + ' opt':>19s} {p + ' frozen':>22s}"
                                       for p in profiles)
    print(head)
    for r in results:
        print(f"{r.config.name:22s}" + "".join(
            f" {r.optimised[p].score:19.1f} {r.frozen[p]:22.1f}" for p in profiles))
    best = max(results, key=lambda r: r.frozen["standard"] + r.optimised["standard"].score)
    out.mkdir(parents=True, exist_ok=True)
    labels = [s.labels for s in series]
    th = best.optimised["standard"].threshold
    for name in NAB_PLOTS:
        i = [s.name for s in series].index(name) if name in [s.name for s in series] else -1
        if i >= 0:
            _plot_nab(series[i], best.scores[i], th, best.config.hold_rows,
                      out / (Path(name).stem + ".png"))
    _write_nab_report(out, series, results, best, labels)
    return 0


def _write_nab_report(out: Path, series: Sequence[NabSeries], results: Sequence[NabResult],
                      best: NabResult, labels: Sequence[nab.FileLabels]) -> None:
    profiles = list(nab.PROFILES)
    half_a, half_b = _nab_halves([s.name for s in series])
    lines = [
        "# NAB evaluation", "",
        f"{len(series)} files, {sum(len(f.windows) for f in labels)} windows, "
        f"{sum(f.n_rows for f in labels)} rows. Scoring: `detectors/nab.py` "
        "(the scoring rules of numenta/NAB's `nab/scorer.py`). Every detector is online: one pass, each "
        "row scored before it is learned. Generated by `enms evaluate nab`.", "",
        "*Optimised*: one threshold per profile chosen on all 36 files (as published "
        "numbers are). *Frozen*: the threshold chosen on half A is applied to half B and "
        "vice versa (halves alternate within each category); the two raw scores are added "
        "and normalised over all windows. This is the honest number.", "",
        "With a hold of *h* rows, an alert fires at the first row at or above the threshold "
        "and the next *h* rows cannot fire (causal post-processing). Its threshold is "
        "swept over 400 quantiles of the top 10 % of scores; without a hold, exactly over "
        "every distinct score.", "",
        "## Scores (normalised, 0 = null detector, 100 = perfect)", "",
        "| config | hold | " + " | ".join(f"{p} opt | {p} frozen" for p in profiles)
        + " | run time (s) |",
        "|---|---|" + "---|---|" * len(profiles) + "---|",
    ]
    for r in results:
        lines.append(f"| {r.config.name} | {r.config.hold_rows} | " + " | ".join(
            f"{r.optimised[p].score:.1f} | {r.frozen[p]:.1f}" for p in profiles)
            + f" | {r.seconds:.1f} |")
    lines += [
        "", f"**Chosen: `{best.config.name}`** = `{best.config.detector}"
        f"({json.dumps(best.config.params)})`, hold {best.config.hold_rows} rows. "
        "Frozen in `evaluation/configs/nab.json`.", "",
        "The `likelihood_mean_*` configurations average the squashed surprise terms "
        "(level, step, shift and the two seasonal ones) instead of taking their maximum, "
        "so one noisy term no longer triggers alone; with a wider squash (scale 8), a "
        "slower fast forecast (half-life 6) and a 3000-row history this lifts the standard "
        "score by about 5 points, optimised and frozen. Neighbouring settings (scale 6-12, "
        "history 2000-4000, fast half-life 3, short 10, daily or weekly period, hold 150) "
        "score 65.8-67.8 optimised and 63.6-66.1 frozen (standard); a 250-row hold or no "
        "seasonal period is clearly worse. "
        "Details: the `AnomalyLikelihood` docstring in `detectors/univariate.py`.", "",
        "| profile | threshold (all files) | θ from half A | θ from half B |",
        "|---|---|---|---|",
    ]
    for p in profiles:
        a, b = best.frozen_thresholds[p]
        lines.append(f"| {p} | {_fmt(best.optimised[p].threshold)} | {_fmt(a)} | {_fmt(b)} |")
    lines += [
        "", "## Published scores on these 36 files (threshold optimised)", "",
        "| detector | standard | reward_low_FP | reward_low_FN |", "|---|---|---|---|",
        "| ARTime | 78.1 | 70.6 | 83.4 |", "| contextOSE | 74.0 | 71.2 | 77.0 |",
        "| Numenta HTM | 72.2 | 65.3 | 76.3 |",
        f"| **this ({best.config.name})** | " + " | ".join(
            f"{best.optimised[p].score:.1f}" for p in profiles) + " |",
        "", "On the whole 58-file corpus (standard): Random Cut Forest 51.7, Windowed "
        "Gaussian 39.6, Random 11.0.", "",
        "## Per file (chosen config, standard profile, threshold optimised on all files)", "",
        "| file | half | windows | detections | raw score |", "|---|---|---|---|---|",
    ]
    th = best.optimised["standard"].threshold
    for s, sc in zip(series, best.scores, strict=True):
        d = _detections(sc, th, best.config.hold_rows)
        d[: s.labels.probation] = False
        raw = nab.score_detections(d, s.labels, nab.STANDARD)
        half = "A" if s.name in half_a else "B"
        lines.append(f"| {s.name} | {half} | {len(s.labels.windows)} | {int(d.sum())} | "
                     f"{raw:.2f} |")
    lines += ["", "## Plots", "",
              "Blue: value; orange: labelled windows; grey: probationary period; red "
              "triangles: detections (standard threshold); lower panel: score and "
              "threshold.", ""]
    lines += [f"![{n}]({Path(n).stem}.png)" for n in NAB_PLOTS if (out / (Path(n).stem + ".png")).exists()]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def _save_config(bench: str, cfg: Config, thresholds: dict[str, float],
                 scores: dict[str, Any]) -> None:
    CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": bench, "config": cfg.name, "detector": cfg.detector,
           "params": cfg.params, "hold_rows": cfg.hold_rows, "thresholds": thresholds,
           "scores": scores}
    (CONFIG_DIR / f"{bench}.json").write_text(json.dumps(doc, indent=2) + "\n")


# ---------------------------------------------------------------------------------------
# SKAB
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SkabResult:
    """Pooled point-wise results of one configuration."""

    config: Config
    scores: list[np.ndarray]  # scored rows only (after the training rows)
    optimised: dict[str, tuple[float, PointwiseMetrics]]  # file set -> (θ, metrics)
    frozen: dict[str, PointwiseMetrics]
    frozen_thresholds: dict[str, tuple[float, float]]


def _skab_sets(series: Sequence[SkabSeries]) -> dict[str, list[int]]:
    return {
        "all files": list(range(len(series))),
        "anomaly files": [i for i, s in enumerate(series) if not s.name.startswith("anomaly-free")],
    }


def evaluate_skab(cfg: Config, series: Sequence[SkabSeries]) -> SkabResult:
    """Fit on the first 400 rows of each file, score the rest online; optimise and freeze."""
    scores = []
    for s in series:
        xs = (dict(zip(s.columns, map(float, row), strict=True)) for row in s.x)
        scores.append(run_detector(cfg.make(), xs, train=SKAB_TRAIN_ROWS)[SKAB_TRAIN_ROWS:])
    labels = [s.anomaly[SKAB_TRAIN_ROWS:] for s in series]
    opt, frozen, fth = {}, {}, {}
    for set_name, idx in _skab_sets(series).items():
        pooled_s = np.concatenate([scores[i] for i in idx])
        pooled_y = np.concatenate([labels[i] for i in idx])
        sw = best_f1_threshold(pooled_s, pooled_y)
        opt[set_name] = (sw.threshold, sw.metrics)
        half_a, half_b = split_halves([series[i].name for i in idx],
                                      group=lambda n: n.split("/")[0])
        ia = [i for i in idx if series[i].name in set(half_a)]
        ib = [i for i in idx if series[i].name in set(half_b)]

        def pool(ii: list[int]) -> tuple[np.ndarray, np.ndarray]:
            return (np.concatenate([scores[i] for i in ii]),
                    np.concatenate([labels[i] for i in ii]))

        (sa, ya), (sb, yb) = pool(ia), pool(ib)
        th_a = best_f1_threshold(sa, ya).threshold
        th_b = best_f1_threshold(sb, yb).threshold
        frozen[set_name] = pointwise_metrics(np.r_[sb >= th_a, sa >= th_b], np.r_[yb, ya])
        fth[set_name] = (th_a, th_b)
    return SkabResult(cfg, scores, opt, frozen, fth)


def _plot_skab(s: SkabSeries, scores: np.ndarray, threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr = s.x[:SKAB_TRAIN_ROWS]
    z = (s.x - tr.mean(axis=0)) / (tr.std(axis=0) + 1e-9)
    x = np.arange(len(s.x))
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(12, 6), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    for k, c in enumerate(s.columns):
        ax.plot(x, z[:, k], lw=0.6, label=c)
    ax.axvspan(0, SKAB_TRAIN_ROWS, color="0.85", label="training rows")
    a = s.anomaly.astype(int)
    starts = np.flatnonzero(np.diff(np.r_[0, a]) == 1)
    ends = np.flatnonzero(np.diff(np.r_[a, 0]) == -1)
    for k, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
        ax.axvspan(lo, hi, color="tab:orange", alpha=0.25, label="anomaly" if k == 0 else None)
    ax.set_ylim(-10, 10)
    ax.set_ylabel("z vs training rows")
    ax.set_title(s.name)
    ax.legend(loc="upper left", fontsize=7, ncol=3)
    sx = x[SKAB_TRAIN_ROWS:]
    ax2.plot(sx, scores, lw=0.7, color="tab:purple")
    ax2.axhline(threshold, color="red", ls="--", lw=0.8)
    flagged = sx[scores >= threshold]
    ax2.scatter(flagged, np.full(flagged.size, 1.02), s=2, color="red", label="flagged")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("score")
    ax2.set_xlabel("row")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


SKAB_PLOTS = ("valve1/0.csv", "other/11.csv", "anomaly-free/anomaly-free.csv")


def _m(m: PointwiseMetrics) -> str:
    return f"{m.f1:.3f} | {m.far:.3f} | {m.mar:.3f}"


def run_skab(data: Path, out: Path, only: str | None) -> int:
    """Evaluate every SKAB configuration (or ``only``), print, report and freeze the best."""
    series = load_skab(data)
    configs = [c for c in SKAB_CONFIGS if only in (None, c.name)]
    if not configs:
        log.error("unknown config %s", only)
        return 2
    results = [evaluate_skab(c, series) for c in configs]
    sets = list(_skab_sets(series))
    print(f"{'config':22s} {'files':14s} {'opt F1':>7s} {'FAR':>6s} {'MAR':>6s}"
          f" {'frozen F1':>10s} {'FAR':>6s} {'MAR':>6s}")
    for r in results:
        for k in sets:
            o, f = r.optimised[k][1], r.frozen[k]
            print(f"{r.config.name:22s} {k:14s} {o.f1:7.3f} {o.far:6.3f} {o.mar:6.3f}"
                  f" {f.f1:10.3f} {f.far:6.3f} {f.mar:6.3f}")
    best = max(results,  # chosen on the published protocol: the 17 files with anomalies
               key=lambda r: r.optimised["anomaly files"][1].f1 + r.frozen["anomaly files"].f1)
    out.mkdir(parents=True, exist_ok=True)
    th = best.optimised["anomaly files"][0]
    names = [s.name for s in series]
    for n in SKAB_PLOTS:
        if n in names:
            i = names.index(n)
            _plot_skab(series[i], best.scores[i], th, out / (n.replace("/", "_")[:-4] + ".png"))
    lines = [
        "# SKAB evaluation", "",
        f"{len(series)} files, {sum(len(s.x) - SKAB_TRAIN_ROWS for s in series)} scored rows "
        f"({sum(int(s.anomaly[SKAB_TRAIN_ROWS:].sum()) for s in series)} anomalous). "
        f"Protocol: each file's first {SKAB_TRAIN_ROWS} rows fit the detector, the rest are "
        "scored online (score, then learn: here learning after the training rows only feeds "
        "the T² smoother). Metric: pooled point-wise F1 with false alarm rate (FAR = "
        "FP / (FP + TN)) and missed alarm rate (MAR = FN / (FN + TP)). Generated by "
        "`enms evaluate skab`.", "",
        "*Anomaly files* are the 17 files with labels: the published SKAB leaderboard (the "
        "figures below) scores these, and so does this project's target (pooled F1 at least "
        "0.5). *All files* adds `anomaly-free/anomaly-free.csv`, SKAB's recording of normal "
        "operation, which has no `anomaly` or `changepoint` column (9 005 scored rows taken "
        "as normal, with a slow drift far outside its first 400 rows); it is shown for its "
        "false alarms, not as the benchmark. "
        "*Frozen*: θ chosen on one half of the files (alternating within each folder) is "
        "applied to the other half and vice versa, then pooled.", "",
        "| config | files | opt θ | opt F1 | FAR | MAR | frozen F1 | FAR | MAR |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for k in sets:
            lines.append(f"| {r.config.name} | {k} | {r.optimised[k][0]:.4f} | "
                         f"{_m(r.optimised[k][1])} | {_m(r.frozen[k])} |")
    lines += [
        "", f"**Chosen: `{best.config.name}`** = `{best.config.detector}"
        f"({json.dumps(best.config.params)})`, threshold {th:.4f} (optimised on the anomaly "
        "files). Frozen in `evaluation/configs/skab.json`.", "",
        "Published (whole set, F1): Conv-AE 0.78, MSET 0.78, T2+Q 0.76, LSTM-AE 0.74, "
        "Isolation Forest 0.29.", "", "## Plots", "",
        "Channels as z-scores against the file's training rows; orange: labelled anomaly; "
        "lower panel: score, threshold (optimised on the anomaly files) and flagged rows.", "",
    ]
    lines += [f"![{n}]({n.replace('/', '_')[:-4]}.png)" for n in SKAB_PLOTS if n in names]
    (out / "README.md").write_text("\n".join(lines) + "\n")
    _save_config("skab", best.config,
                 {k: best.optimised[k][0] for k in sets},
                 {"optimised": {k: vars_m(best.optimised[k][1]) for k in sets},
                  "frozen": {k: vars_m(best.frozen[k]) for k in sets}})
    return 0


def vars_m(m: PointwiseMetrics) -> dict[str, float]:
    """F1, FAR and MAR of a result, rounded, for JSON."""
    return {"f1": round(m.f1, 4), "far": round(m.far, 4), "mar": round(m.mar, 4)}


# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``evaluate nab|skab --data PATH [--out DIR] [--config NAME]``."""
    parser = argparse.ArgumentParser(prog="enms evaluate", description=__doc__)
    parser.add_argument("benchmark", choices=["nab", "skab"])
    parser.add_argument("--data", type=Path, required=True, help="NAB or SKAB folder")
    parser.add_argument("--out", type=Path, default=None, help="report folder "
                        "(default reports/<benchmark>)")
    parser.add_argument("--config", default=None, help="NAB: run a standalone reference "
                        "configuration instead of the product (`all`: every one); SKAB: "
                        "evaluate only this configuration")
    args = parser.parse_args(argv)
    out = args.out or Path("reports") / args.benchmark
    run = run_nab if args.benchmark == "nab" else run_skab
    return run(args.data, out, args.config)


if __name__ == "__main__":
    raise SystemExit(main())
