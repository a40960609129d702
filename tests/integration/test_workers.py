"""Two workers: partitions are shared, and when one dies the other takes its machines over
with their detectors restored from the table's changelog (no new warm-up)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from faust.serializers import codecs

from detectors.scoring import MachineScorer
from schemas.machines import MACHINES
from schemas.readings import Reading
from streams import topics
from tests.integration.clients import consume, producer, send_readings, steady_readings, ws_client
from tests.integration.conftest import ALL_OUTPUT_PARTITIONS, Stack, bridge_partitions
from tests.integration.services import wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2003, 9, 1, tzinfo=UTC)
WARM = 400


def changelog_seen(records: list) -> dict[bytes, int]:  # type: ignore[type-arg]
    """Latest `seen` count per machine key in the changelog records."""
    out: dict[bytes, int] = {}
    for r in records:
        scorer: MachineScorer = codecs.loads("pickle", r.value)  # Faust's codec: our own data
        out[r.key] = scorer.seen
    return out


async def test_failover_keeps_detector_state(stack: Stack, kafka_bootstrap: str) -> None:
    env = {"ENMS_WINDOW_SECONDS": "300"}
    w1 = stack.start("worker", **env)
    api = stack.start_api()
    w1.wait_for_log("Worker]: Ready", 120)
    wait_until(lambda: len(bridge_partitions(api)) == ALL_OUTPUT_PARTITIONS, 60, "bridge")
    changelog = f"{stack.env['ENMS_APP_ID']}-machine-scorers-changelog"

    async with producer(kafka_bootstrap) as p:
        # Warm every machine on worker 1, then keep a trickle going until each detector's
        # checkpoint (after the warm-up) is in the changelog.
        for i, m in enumerate(MACHINES):
            await send_readings(p, topics.READINGS, steady_readings(
                m.id, T0, WARM, level=0.5 * m.rated_power_kw, seed=i))
        extra = 0

        def all_checkpointed(records: list) -> bool:  # type: ignore[type-arg]
            seen = changelog_seen(records)
            return len(seen) == len(MACHINES) and min(seen.values()) >= WARM

        while True:
            for i, m in enumerate(MACHINES):
                await send_readings(p, topics.READINGS, steady_readings(
                    m.id, T0 + timedelta(seconds=30 * (WARM + extra)), 1,
                    level=0.5 * m.rated_power_kw, seed=100 + i))
            extra += 1
            try:
                await consume(kafka_bootstrap, changelog, all_checkpointed, 3)
                break
            except AssertionError:
                assert extra < 40, "detectors never checkpointed to the changelog"

        # A second worker joins; then the first one leaves for good.
        w2 = stack.start("worker", **env)
        w2.wait_for_log("Worker]: Ready", 120)
        w1.stop()

        # Every machine's spike is flagged: worker 2 now owns all partitions, and the
        # detectors it restored are warm (a cold one would stay silent through its warm-up).
        spike_at = T0 + timedelta(seconds=30 * (WARM + extra))
        async with ws_client(api.replace("http", "ws") + "/api/v1/ws/anomalies") as (ws, _):
            spikes = [Reading(machine_id=m.id, timestamp=spike_at,
                              power_kw=1.45 * m.rated_power_kw, energy_kwh=0.1)
                      for m in MACHINES]
            await send_readings(p, topics.READINGS, spikes)
            await ws.wait_for(
                lambda _: {e["machine_id"] for e in ws.events("anomaly_detected")
                           if datetime.fromisoformat(e["timestamp"]) == spike_at}
                >= {m.id for m in MACHINES},
                120, "a spike anomaly for every machine after the failover")
    assert "Worker]: Ready" in w2.log_text()
