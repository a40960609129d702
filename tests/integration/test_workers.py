"""Two workers: partitions are shared, and when one leaves the other takes its machines over
with their detectors restored from the table's changelog: warm (no new warm-up), with the
expected power they had learned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors.scoring import ScoringConfig, score_stream
from detectors.state import decode
from schemas.events import AnomalyDetected
from schemas.machines import MACHINES
from schemas.readings import Reading
from streams import topics
from tests.integration.clients import consume, producer, send_readings, steady_readings, ws_client
from tests.integration.conftest import ALL_OUTPUT_PARTITIONS, Stack, bridge_partitions
from tests.integration.services import eventually

pytestmark = pytest.mark.integration

T0 = datetime(2003, 9, 1, tzinfo=UTC)
WARM = 400


def changelog_seen(records: list[Any]) -> dict[bytes, int]:
    """Latest count of readings taken in, per machine key, in the changelog records (the
    values are the scorers' versioned state as data, `detectors.state`)."""
    return {r.key: decode(r.value).order.admitted for r in records}


async def test_failover_keeps_detector_state(stack: Stack, kafka_bootstrap: str) -> None:
    env = {"ENMS_WINDOW_SECONDS": "300"}
    w1 = stack.start("worker", **env)
    api = await stack.api()
    await w1.log_shows("Worker]: Ready", 120)
    await eventually(lambda: len(bridge_partitions(api)) == ALL_OUTPUT_PARTITIONS, 60, "bridge")
    changelog = f"{stack.env['ENMS_APP_ID']}-machine-scorers-changelog"

    async with producer(kafka_bootstrap) as p:
        # Warm every machine on worker 1, then keep a trickle going until each detector's
        # checkpoint (after the warm-up) is in the changelog.
        sent: dict[str, list[Reading]] = {m.id: [] for m in MACHINES}
        for i, m in enumerate(MACHINES):
            sent[m.id] += steady_readings(m.id, T0, WARM, level=0.5 * m.rated_power_kw, seed=i)
            await send_readings(p, topics.READINGS, sent[m.id])
        extra = 0

        def all_checkpointed(records: list[Any]) -> bool:
            seen = changelog_seen(records)
            return len(seen) == len(MACHINES) and min(seen.values()) >= WARM

        while True:
            for i, m in enumerate(MACHINES):
                one = steady_readings(m.id, T0 + timedelta(seconds=30 * (WARM + extra)), 1,
                                      level=0.5 * m.rated_power_kw, seed=100 + i)
                sent[m.id] += one
                await send_readings(p, topics.READINGS, one)
            extra += 1
            try:
                await consume(kafka_bootstrap, changelog, all_checkpointed, 3)
                break
            except AssertionError:
                assert extra < 40, "detectors never checkpointed to the changelog"

        # A second worker joins; then the first one leaves for good.
        w2 = stack.start("worker", **env)
        await w2.log_shows("Worker]: Ready", 120)
        w1.stop()
        assert w1.proc.poll() is not None  # worker 1 is gone: every partition is worker 2's

        # Every machine's spike is flagged: worker 2 now owns all partitions, and the
        # detectors it restored are warm (a cold one would stay silent through its warm-up).
        spike_at = T0 + timedelta(seconds=30 * (WARM + extra))
        async with ws_client(api.replace("http", "ws") + "/api/v1/ws/anomalies") as (ws, _):
            spikes = [Reading(machine_id=m.id, timestamp=spike_at,
                              power_kw=1.45 * m.rated_power_kw, energy_kwh=0.1,
                              throughput_units_per_hour=100.0)
                      for m in MACHINES]
            await send_readings(p, topics.READINGS, spikes)
            await ws.wait_for(
                lambda _: {e["machine_id"] for e in ws.events("anomaly_detected")
                           if datetime.fromisoformat(e["timestamp"]) == spike_at}
                >= {m.id for m in MACHINES},
                120, "a spike anomaly for every machine after the failover")
    got = {e["machine_id"]: e for e in ws.events("anomaly_detected")
           if datetime.fromisoformat(e["timestamp"]) == spike_at}

    # What the same readings give in-process, through the same step as the worker's: the
    # survivor's verdict agrees with a scorer that saw every reading. (Its restored state
    # lacks the readings between the last checkpoint and the failover, so its expected power
    # may differ by a little; a cold scorer would have said nothing at all: warm-up.)
    config = ScoringConfig(window_seconds=300.0)
    for m, spike in zip(MACHINES, spikes, strict=True):
        want = [e for e in score_stream([*sent[m.id], spike], config)
                if isinstance(e, AnomalyDetected) and e.timestamp == spike_at]
        assert len(want) == 1, m.name
        e = got[m.id]
        assert (e["anomaly_type"], e["severity"]) == (want[0].anomaly_type, want[0].severity)
        assert e["expected_value"] == pytest.approx(want[0].expected_value, rel=0.03), m.name
        assert e["expected_value"] == pytest.approx(0.5 * m.rated_power_kw, rel=0.05), m.name
        assert e["anomaly_score"] > 4.0, m.name  # many robust σ above what it had learned
