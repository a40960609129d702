"""`enms replay`: a period of the readings topic, read back by time, scored as the worker
scores it, and matched to the simulator's labels."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from detectors.backtest import score_and_match
from detectors.scoring import ScoringConfig
from schemas.machines import MACHINES
from simulation import generate
from streams import topics
from streams.admin import ensure_topics
from streams.replay import replay
from streams.settings import Settings
from streams.simulator import write_labels
from tests.integration.clients import producer, send_readings

pytestmark = pytest.mark.integration

#: A Monday in winter, and the newest period any module writes: a replay seeks the partition
#: by record time and stops at the first record past its window (history.load_readings), so a
#: later-dated record written before these would cut the replay short.
T0 = datetime(2026, 2, 2, tzinfo=UTC)


async def test_replay_scores_the_topic_like_the_worker(kafka_bootstrap: str, tmp_path: Path) -> None:
    machines = [m for m in MACHINES if m.data_interval_seconds == 30][:3]
    sim = generate(seed=9, start=T0, duration=timedelta(days=1), machines=machines,
                   anomaly_rate_per_day=12)
    readings, labels = list(sim.readings), sim.labels
    write_labels(labels, tmp_path / "labels.jsonl")
    settings = Settings.from_env({"ENMS_KAFKA_BOOTSTRAP": kafka_bootstrap})
    await ensure_topics(settings)
    async with producer(kafka_bootstrap) as p:
        await send_readings(p, topics.READINGS, readings)

    # A window inside the period: the readings before it must not be read.
    start, end = T0 + timedelta(hours=1), T0 + timedelta(days=1)
    result = await replay(settings, start, end, ScoringConfig(), str(tmp_path / "labels.jsonl"))
    window = [r for r in readings if start <= r.timestamp < end]
    assert result["readings"] == len(window)
    in_window = [lab for lab in labels if lab.start < end and lab.end >= start]
    direct, *_ = score_and_match(sorted(window, key=lambda r: r.timestamp), ScoringConfig(), in_window)
    assert result["report"] == asdict(direct)  # the same code path, the same verdicts
    report = result["report"]
    # Warm-up is 300 readings (2.5 h at 30 s); the first label starts at 03:41.
    assert report["found"] == report["labels"] == len(in_window) == 8
    assert report["false_alarms"] == 0
