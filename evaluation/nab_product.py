"""``enms evaluate nab``: the product's detector, `MachineScorer.step`, on NAB.

Every NAB series is a meter with power only: each row is a `Reading` of ``power_kw`` (and
its energy), of a machine made for the file (its interval is the file's, its rated power
1.5 times the largest value of the probationary rows, the only rows a real meter's nameplate
could be checked against). The scorer is the worker's, with the worker's `ScoringConfig`;
what counts as a detection is what a user is alerted to: an episode opening
(`AnomalyEpisode` with status ``opened``), one toast.

The threshold swept is `ScoringConfig.power_only_threshold`, the anomaly likelihood at which
a reading without drivers becomes a candidate. A threshold changes what the scorer learns
(flagged readings are not learned), so every candidate is a full pass over the corpus, not
a cut of one score series. *Optimised*: the best grid value on all files. *Frozen*: the best
value on one half of the files (alternating within each category) scores the other half,
and vice versa. The frozen threshold of the standard profile on all files is written to
``evaluation/configs/nab.json``; `ScoringConfig`'s default is that value (a unit test
checks they agree).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from detectors import nab
from detectors.scoring import MachineScorer, ScoringConfig
from schemas.events import AnomalyEpisode
from schemas.machines import Machine
from schemas.readings import Reading

#: Candidate values of `ScoringConfig.power_only_threshold`.
GRID = tuple(round(float(v), 2) for v in np.arange(0.08, 0.42, 0.02))


def machine_for(name: str, values: np.ndarray, seconds: Sequence[float],
                probation: int) -> Machine:
    """The meter a NAB file stands for: its interval, and a rated power from the
    probationary rows only."""
    interval = int(np.median(np.diff(np.asarray(seconds[:500], dtype=float))))
    head = np.abs(values[: max(probation, 2)])
    rated = max(1e-6, 1.5 * float(head.max()))
    return Machine(id=f"nab/{name}", name=name, type="other", rated_power_kw=rated,
                   data_interval_seconds=max(1, interval))


def openings(config: ScoringConfig, name: str, values: np.ndarray, seconds: Sequence[float],
             probation: int) -> np.ndarray:
    """One pass of a fresh scorer over one file: True at the rows where an episode opens."""
    machine = machine_for(name, values, seconds, probation)
    scorer = MachineScorer(machine, config)
    interval = machine.data_interval_seconds
    out = np.zeros(len(values), dtype=bool)
    for k, (t, v) in enumerate(zip(seconds, values, strict=True)):
        r = Reading(machine_id=machine.id, timestamp=_utc(t), power_kw=float(v),
                    energy_kwh=float(v) * interval / 3600.0)
        out[k] = any(isinstance(e, AnomalyEpisode) and e.status == "opened"
                     for e in scorer.step(r))
    return out


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _one(args: tuple[ScoringConfig, str, np.ndarray, list[float], int]) -> np.ndarray:
    return openings(*args)


@dataclass(frozen=True)
class ProductResult:
    """Every grid pass and what the NAB scorer makes of them."""

    config: ScoringConfig
    detections: dict[float, list[np.ndarray]]  # threshold -> per-file openings
    optimised: dict[str, tuple[float, float]]  # profile -> (threshold, score)
    frozen: dict[str, float]
    frozen_thresholds: dict[str, tuple[float, float]]
    seconds: float


def _score(dets: Sequence[np.ndarray], labels: Sequence[nab.FileLabels],
           profile: nab.Profile) -> float:
    return sum(nab.score_detections(d, f, profile) for d, f in zip(dets, labels, strict=True))


def evaluate(series: Sequence[Any], config: ScoringConfig, halves: tuple[list[str], list[str]],
             grid: Sequence[float] = GRID, workers: int = 2) -> ProductResult:
    """Score every file at every grid threshold (``workers`` processes), optimise, freeze."""
    t0 = time.perf_counter()
    labels = [s.labels for s in series]
    detections: dict[float, list[np.ndarray]] = {}
    with ProcessPoolExecutor(workers) as pool:
        for th in grid:
            cfg = replace(config, power_only_threshold=th)
            jobs = [(cfg, s.name, s.values, [t.replace(tzinfo=UTC).timestamp()
                                             for t in s.timestamps], s.labels.probation)
                    for s in series]
            detections[th] = list(pool.map(_one, jobs))
    names = [s.name for s in series]
    ia = [i for i, n in enumerate(names) if n in set(halves[0])]
    ib = [i for i, n in enumerate(names) if n in set(halves[1])]
    optimised, frozen, fth = {}, {}, {}
    for pname, prof in nab.PROFILES.items():
        def best(idx: list[int], prof: nab.Profile = prof) -> float:
            return max(grid, key=lambda th: (
                _score([detections[th][i] for i in idx], [labels[i] for i in idx], prof), -th))
        th_all = best(list(range(len(series))))
        optimised[pname] = (th_all, nab.normalised(_score(detections[th_all], labels, prof),
                                                   labels, prof))
        th_a, th_b = best(ia), best(ib)
        raw = (_score([detections[th_a][i] for i in ib], [labels[i] for i in ib], prof)
               + _score([detections[th_b][i] for i in ia], [labels[i] for i in ia], prof))
        frozen[pname] = nab.normalised(raw, labels, prof)
        fth[pname] = (th_a, th_b)
    return ProductResult(config, detections, optimised, frozen, fth,
                         time.perf_counter() - t0)


def save(result: ProductResult, path: Path) -> None:
    """The chosen threshold and the scores, as ``evaluation/configs/nab.json``."""
    cfg = replace(result.config, power_only_threshold=result.optimised["standard"][0])
    doc = {
        "benchmark": "nab", "detector": "MachineScorer (power-only meters)",
        "scoring_config": {k: v for k, v in asdict(cfg).items()
                           if k.startswith("power_only") or k in (
                               "hold_readings", "episode_gap_s", "stuck_run", "warmup")},
        "thresholds": {p: th for p, (th, _) in result.optimised.items()},
        "scores": {"optimised": {p: round(s, 2) for p, (_, s) in result.optimised.items()},
                   "frozen": {p: round(s, 2) for p, s in result.frozen.items()}},
        "grid": list(result.detections),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
