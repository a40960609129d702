"""The machine-scorers table: its changelog value is the scorer's versioned state as JSON,
read back without running anything, and the agent goes on from a restored state."""

from __future__ import annotations

import dataclasses
import logging
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import AsyncMock, MagicMock, patch

import msgspec
import orjson
import pytest

from agents import score_readings as agent_module
from detectors import state as st
from detectors.scoring import MachineScorer
from schemas.events import AnomalyDetected
from schemas.readings import Reading, encode_reading
from streams import topics
from tables.scorers import scorers
from tests.agents.fakes import acked
from tests.unit.test_scorer_state import v1_literal

M = "c0000000-0000-0000-0000-000000000006"  # Conveyor-Main, 15 kW, 10 s
T0 = datetime(2026, 2, 2, 9, tzinfo=UTC)


def reading(i: int, p: float | None = None) -> Reading:
    p = 10.0 + 0.1 * (i % 4) if p is None else p
    return Reading(machine_id=M, timestamp=T0 + timedelta(seconds=10 * i), power_kw=p,
                   energy_kwh=p * 10 / 3600, throughput_units_per_hour=100.0)


def dumps(value: Any) -> bytes:
    """What the table writes to its changelog for ``value``."""
    raw = agent_module.app.serializers.dumps_value(None, value, serializer=scorers.value_serializer)
    assert isinstance(raw, bytes)
    return raw


def loads(raw: bytes) -> Any:
    """What the table holds after recovering ``raw`` from its changelog."""
    return agent_module.app.serializers.loads_value(None, raw, serializer=scorers.value_serializer)


RAN: list[str] = []


def _mark(what: str) -> None:
    RAN.append(what)


class _Payload:
    """Unpickling this calls `_mark`: what anyone who can write the changelog could send."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_mark, ("code from the changelog ran",))


def test_the_changelog_value_is_the_scorers_versioned_state_as_json() -> None:
    s = MachineScorer(M, agent_module.CONFIG)
    for i in range(50):
        s.step(reading(i))
    raw = dumps(s)
    assert raw.startswith(b'{"version":2,"machine_id":"%s"' % M.encode())
    assert orjson.loads(raw)["order"]["admitted"] == 50
    restored = loads(raw)
    assert isinstance(restored, st.ScorerState) and restored == s.state()


def test_a_stored_value_of_version_1_is_upcast() -> None:
    restored = loads(msgspec.json.encode(v1_literal()))
    assert isinstance(restored, st.ScorerState)
    assert restored.version == 2 and restored.metrics.baseline.model_id == "b7"


def test_a_value_that_is_not_a_state_runs_nothing_and_starts_the_machine_afresh(
        caplog: pytest.LogCaptureFixture) -> None:
    RAN.clear()
    assert pickle.loads(pickle.dumps(_Payload())) is None and RAN  # noqa: S301 - the attack
    RAN.clear()
    with caplog.at_level(logging.WARNING, logger="tables.scorers"):
        assert loads(pickle.dumps(_Payload())) is None
        assert loads(b'{"version": 99}') is None
    assert not RAN
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "machine-scorers: a stored scorer state is not readable (not a scorer state: "
        "JSON is malformed: invalid character (byte 0))",
        "machine-scorers: a stored scorer state is not readable (state version 99 (this "
        "worker reads 1, 2))"]


async def run_agent(values: list[bytes]) -> tuple[list[dict[str, Any]], MagicMock]:
    """Put ``values`` (readings of M) through the agent; its anomalies and changelog writes."""
    sends = {name: AsyncMock() for name in agent_module.output_topics}
    changelog = MagicMock()
    with patch.object(agent_module.dead_letters.topic, "send", acked()), \
            patch.object(agent_module.energy_hourly_topic, "send", AsyncMock()), \
            patch.object(scorers, "on_key_set", changelog), \
            patch.dict(agent_module.output_topics,
                       {k: AsyncMock(send=v) for k, v in sends.items()}):
        async with agent_module.score_readings.test_context() as agent:
            for value in values:
                await agent.put(value, key=M.encode())
    on_topic = [orjson.loads(c.kwargs["value"]) for c in sends[topics.ANOMALIES].await_args_list]
    return [e for e in on_topic if e["event_type"] == "anomaly_detected"], changelog


async def test_the_agent_goes_on_from_a_restored_state(app) -> None:
    """After a recovery the table holds the state; the agent rebuilds the scorer from it and
    goes on where it stopped: warm, so a spike is flagged at once, as the scorer that wrote
    the state would have."""
    warm = MachineScorer(M, agent_module.CONFIG)
    for i in range(400):
        warm.step(reading(i))
    scorers.data[M.encode()] = loads(dumps(warm))  # as Faust's recovery leaves it
    rest = [reading(400), reading(401, 40.0), reading(402)]
    expected = [e.event_id for r in rest for e in warm.step(r) if isinstance(e, AnomalyDetected)]
    anomalies, changelog = await run_agent([encode_reading(r) for r in rest])
    assert [a["event_id"] for a in anomalies] == expected and len(expected) == 1
    assert isinstance(scorers.data[M.encode()], MachineScorer)
    # Nothing written for the restore itself; the first checkpoint comes with the batch.
    assert [c.args[0] for c in changelog.call_args_list] == [M.encode()]


async def test_a_restored_state_of_another_detector_starts_the_machine_afresh(
        app, caplog: pytest.LogCaptureFixture) -> None:
    other = MachineScorer(M, dataclasses.replace(agent_module.CONFIG, detector="zscore"))
    for i in range(400):
        other.step(reading(i))
    scorers.data[M.encode()] = loads(dumps(other))
    with caplog.at_level(logging.WARNING, logger="agents.score_readings"):
        anomalies, _ = await run_agent([encode_reading(reading(400, 40.0))])
    assert anomalies == []  # a new scorer, still warming up
    assert scorers.data[M.encode()].seen == 1
    assert any("does not fit" in r.getMessage() and "ExplainedState" in r.getMessage()
               for r in caplog.records)
