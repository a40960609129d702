"""Replay the readings topic by time through the worker's scoring path (`enms replay`) and
score the detections against labelled anomalies. The in-process simulator backtest is
`evaluation.simulated`."""

from __future__ import annotations

import asyncio
import heapq
import time
from dataclasses import asdict
from datetime import datetime
from operator import attrgetter

from detectors.backtest import score_and_match
from detectors.scoring import ScoringConfig
from schemas.machines import MACHINES
from streams.history import load_readings
from streams.settings import Settings
from streams.simulator import read_labels


async def replay(settings: Settings, start: datetime, end: datetime, config: ScoringConfig,
                 labels_path: str | None) -> dict[str, object]:
    """Read every machine's readings in [start, end) from Kafka and score them at full speed."""
    per_machine = await asyncio.gather(*(load_readings(settings, m.id, start, end)
                                         for m in MACHINES))
    readings = list(heapq.merge(*per_machine, key=attrgetter("timestamp")))
    labels = [lab for lab in (read_labels(labels_path) if labels_path else [])
              if lab.start < end and lab.end >= start]
    t0 = time.perf_counter()
    report, sev, n = score_and_match(readings, config, labels)
    seconds = time.perf_counter() - t0
    return {"readings": n, "seconds": round(seconds, 2), "readings_per_s": round(n / seconds)
            if seconds else None, "severities": sev, "report": asdict(report)}
