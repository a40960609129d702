"""Backtests through the same scoring path as the worker: replay the readings topic by time,
or a simulated period in-process, and score detections against labelled anomalies."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from detectors.backtest import Report, backtest
from detectors.scoring import Observer, ScoringConfig, score_stream
from schemas.events import AnomalyDetected
from schemas.machines import MACHINES
from schemas.readings import Reading
from simulation import Label, generate
from streams.history import load_readings
from streams.settings import Settings
from streams.simulator import read_labels


def _run(readings: Iterable[Reading], config: ScoringConfig, labels: list[Label],
         judge_from: datetime | None = None, observe: Observer | None = None,
         ) -> tuple[Report, dict[str, int], float, int]:
    """Score every reading as the agent does; judge the detections at or after ``judge_from``."""
    t0 = time.perf_counter()
    n = 0
    severities: dict[str, int] = {}
    detections = []

    def counted() -> Iterator[Reading]:
        nonlocal n
        for r in readings:
            n += 1
            yield r
    for e in score_stream(counted(), config, observe):
        if isinstance(e, AnomalyDetected) and (judge_from is None or e.timestamp >= judge_from):
            detections.append((e.machine_id or "", e.timestamp))
            severities[e.severity] = severities.get(e.severity, 0) + 1
    return backtest(detections, labels), severities, time.perf_counter() - t0, n


async def replay(settings: Settings, start: datetime, end: datetime, config: ScoringConfig,
                 labels_path: str | None) -> dict[str, object]:
    """Read every machine's readings in [start, end) from Kafka and score them at full speed."""
    per_machine = await asyncio.gather(*(load_readings(settings, m.id, start, end)
                                         for m in MACHINES))
    readings = list(heapq.merge(*per_machine, key=attrgetter("timestamp")))
    labels = [lab for lab in (read_labels(labels_path) if labels_path else [])
              if lab.start < end and lab.end >= start]
    report, sev, seconds, n = _run(readings, config, labels)
    return {"readings": n, "seconds": round(seconds, 2), "readings_per_s": round(n / seconds)
            if seconds else None, "severities": sev, "report": asdict(report)}


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
    report, sev, seconds, n = _run(sim.readings, config, labels, judge_from=start + WARMUP,
                                   observe=observe)
    return {"readings": n, "seconds": round(seconds, 2), "severities": sev,
            "report": asdict(report), "labels": labels,
            "note": "the first simulated day is warm-up"}
