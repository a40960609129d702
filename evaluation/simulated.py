"""``enms evaluate simulator``: the online detector on the simulator's labelled anomalies.

Simulates the eight machines (the first day is warm-up and not judged), scores every reading
through the same `MachineScorer.step` as the worker, matches detections to the labels
(`detectors.backtest`: alarms, per-kind recall and F1), scores a clean week the same way, and
writes ``README.md`` with the figures and one PNG per anomaly kind (power, expected power,
the labelled window and the readings flagged) to the report folder.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from detectors.backtest import score_and_match
from detectors.scoring import Observer, ScoringConfig
from schemas.events import AnomalyDetected
from schemas.machines import machine_by_id
from schemas.readings import Reading
from simulation import KINDS, Label, generate

#: The first simulated day warms the detectors up: its detections are not judged.
WARMUP = timedelta(days=1)


def judged(labels: Iterable[Label], start: datetime) -> list[Label]:
    """The labels a simulated run from ``start`` is judged on: those that reach past the
    warm-up day (one that began during it is found by a detection after it)."""
    return [lab for lab in labels if lab.end > start + WARMUP]


def simulated(config: ScoringConfig, *, days: float, seed: int, start: datetime,
              anomalies: bool = True, rate_per_day: float = 4.0,
              observe: Observer | None = None) -> dict[str, Any]:
    """Simulate ``days`` of all machines (the first day is warm-up, not judged) and score.

    The result's ``labels`` are the `judged` ones.
    """
    sim = generate(seed=seed, start=start, duration=timedelta(days=days), anomalies=anomalies,
                   anomaly_rate_per_day=rate_per_day)
    labels = judged(sim.labels, start)
    t0 = time.perf_counter()
    report, sev, n = score_and_match(sim.readings, config, labels, judge_from=start + WARMUP,
                                     observe=observe)
    seconds = time.perf_counter() - t0
    return {"readings": n, "seconds": round(seconds, 2), "severities": sev,
            "report": asdict(report), "labels": labels,
            "note": "the first simulated day is warm-up"}

#: Simulated time starts on a Monday at midnight (the warm-up day is a working day).
START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass
class _Window:
    """The readings of one machine around one label, kept for its plot."""

    label: Label
    start: datetime
    end: datetime
    t: list[datetime] = field(default_factory=list)
    power: list[float] = field(default_factory=list)
    expected: list[float | None] = field(default_factory=list)
    flagged: list[tuple[datetime, float, str]] = field(default_factory=list)


def _windows(labels: Sequence[Label]) -> list[_Window]:
    """The first judged label of each kind, padded by its own length (at least 30 min)."""
    out = []
    for kind in KINDS:
        lab = next((lab for lab in labels if lab.kind == kind), None)
        if lab is not None:
            pad = max(lab.end - lab.start, timedelta(minutes=30))
            out.append(_Window(lab, lab.start - pad, lab.end + pad))
    return out


def _plot(w: _Window, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import numpy as np

    def times(ts: Sequence[datetime]) -> np.ndarray:  # matplotlib's own date type
        return np.array([t.replace(tzinfo=None) for t in ts], dtype="datetime64[us]")

    machine = machine_by_id(w.label.machine_id)
    fig, ax = plt.subplots(figsize=(11, 3.6))
    ax.axvspan(float(mdates.date2num(w.label.start)), float(mdates.date2num(w.label.end)),
               color="tab:orange", alpha=0.25, label=f"labelled {w.label.kind}")
    ax.plot(times(w.t), w.power, lw=0.7, color="tab:blue", label="power (kW)")
    ax.plot(times(w.t), [float("nan") if e is None else e for e in w.expected], lw=1.0,
            color="black", ls="--", label="expected from drivers")
    kinds = sorted({k for _, _, k in w.flagged})
    for k, colour in zip(kinds, ("red", "purple", "green", "brown", "magenta", "olive"),
                         strict=False):
        pts = [(t, p) for t, p, kk in w.flagged if kk == k]
        ax.scatter(times([t for t, _ in pts]), [p for _, p in pts], s=9, color=colour, zorder=3,
                   label=f"flagged as {k} ({len(pts)})")
    ax.set_title(f"{machine.name if machine else w.label.machine_id}: {w.label.kind}, "
                 f"{w.label.start:%a %d %b %H:%M}-{w.label.end:%H:%M} UTC")
    ax.set_ylabel("kW")
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def evaluate(config: ScoringConfig, *, days: float, seed: int,
             clean_days: float = 8.0) -> tuple[dict[str, Any], dict[str, Any], list[_Window]]:
    """Score a labelled run and a clean run; keep the readings around one label per kind."""
    # The plan is known before any reading is generated, so the plot windows are too.
    plan = generate(seed=seed, start=START, duration=timedelta(days=days)).labels
    windows = _windows(judged(plan, START))

    def observe(r: Reading, expected: float | None, found: list[AnomalyDetected]) -> None:
        for w in windows:
            if r.machine_id == w.label.machine_id and w.start <= r.timestamp <= w.end:
                w.t.append(r.timestamp)
                w.power.append(r.power_kw)
                w.expected.append(expected)
                w.flagged.extend((a.timestamp, a.value, a.anomaly_type) for a in found)

    result = simulated(config, days=days, seed=seed, start=START, observe=observe)
    clean = simulated(config, days=clean_days, seed=seed, start=START, anomalies=False)
    return result, clean, windows


def write_report(out: Path, config: ScoringConfig, result: dict[str, Any],
                 clean: dict[str, Any], windows: list[_Window], *, days: float, seed: int,
                 clean_days: float) -> None:
    """README.md with the figures, and the plots."""
    out.mkdir(parents=True, exist_ok=True)
    r = result["report"]
    lines = [
        "# Simulator evaluation", "",
        f"`enms evaluate simulator --days {days:g} --seed {seed}`: the eight simulated machines "
        f"for {days:g} days from {START:%a %d %b %Y} ({result['readings']:,} readings, "
        f"scored in {result['seconds']} s through `MachineScorer.step`, as the worker does). "
        "The first day is warm-up: its detections and labels are not judged. Detector: "
        f"`{config.detector}`, threshold {config.threshold}, min_z {config.min_z}, "
        f"drift_z {config.drift_z}.", "",
        "Matching (`detectors/backtest.py`): a label is found when a detection of its machine "
        "falls inside it (or up to 5 min after). A machine's flagged readings, true and false "
        "apart, no more than 5 min apart form one *alarm*; precision is over alarms, and every "
        "kind's F1 uses that one precision (a false alarm has no kind).", "",
        "| kind | labels | found | recall | F1 |", "|---|---|---|---|---|",
    ]
    lines += [f"| {k} | {v['labels']} | {v['found']} | {v['recall']:.3f} | {v['f1']:.3f} |"
              for k, v in r["per_kind"].items()]
    lines += [
        "",
        f"Alarms: {r['alarms']} ({r['false_alarms']} false; precision {r['precision']}). "
        f"Flagged readings: {r['detections']:,} ({r['false_detections']} false; precision "
        f"{r['reading_precision']}). Severities of the flagged readings: "
        f"{result['severities']}.", "",
        f"**Clean run** ({clean_days:g} days, no anomaly injected, same seed; first day warm-up): "
        f"{clean['report']['detections']} flagged readings, severities "
        f"{clean['severities'] or '{}'}: "
        f"{'no critical anomaly' if not clean['severities'].get('critical') else 'CRITICAL ANOMALIES'}.",
        "", "## Plots", "",
        "The first judged label of each kind, with its machine's readings around it: power, "
        "the power expected from the drivers before each reading was scored, the labelled "
        "window (orange) and the flagged readings by the type given to them.", "",
    ]
    for w in windows:
        name = f"{w.label.kind}.png"
        _plot(w, out / name)
        lines.append(f"![{w.label.kind}]({name})")
    (out / "README.md").write_text("\n".join(lines) + "\n")
