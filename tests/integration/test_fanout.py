"""Two API processes: Kafka consumer group for forwarding, Redis for the fan-out.

Each event on an output topic is forwarded to Redis by exactly one of the two bridges, and
each process delivers it to its own WebSocket clients exactly once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.events import AnomalyDetected, SystemAlert, encode
from schemas.machines import MACHINES
from tests.integration.clients import WsCollector, producer, ws_client
from tests.integration.conftest import ALL_OUTPUT_PARTITIONS, Stack, bridge_partitions
from tests.integration.services import eventually

pytestmark = pytest.mark.integration


def _events(tag: str, n: int) -> list[tuple[str, str, bytes]]:
    """(topic, key, payload) of n events spread over machines (so over partitions)."""
    out = []
    t = datetime(2003, 6, 1, tzinfo=UTC)
    for i in range(n):
        m = MACHINES[i % len(MACHINES)]
        e: SystemAlert | AnomalyDetected
        if i % 4 == 0:
            e = SystemAlert(event_id=f"{tag}-{i}", occurred_at=t, machine_id=m.id,
                            alert_type="test", severity="info", message=f"alert {i}")
        else:
            e = AnomalyDetected(
                event_id=f"{tag}-{i}", occurred_at=t, machine_id=m.id, machine_name=m.name,
                timestamp=t, metric="power_kw", value=1.0, expected_value=0.5,
                deviation_percent=100.0, score=0.99, threshold=0.9, anomaly_score=9.0,
                severity="critical", anomaly_type="spike", detector="test")
        out.append((type(e).TOPIC, m.id, encode(e)))
    return out


def _received(c: WsCollector, ids: set[str]) -> Callable[[list[dict[str, Any]]], bool]:
    """A `WsCollector.wait_for` predicate: every one of `ids` has reached `c`."""
    return lambda _: ids <= {e["event_id"] for e in c.events()}


async def test_two_api_processes_each_deliver_every_event_exactly_once(
        stack: Stack, kafka_bootstrap: str) -> None:
    a = await stack.api()
    b = await stack.api()
    # Both bridges in one group: the output partitions split between them, no overlap.
    def split() -> bool:
        pa, pb = set(bridge_partitions(a)), set(bridge_partitions(b))
        return bool(pa) and bool(pb) and not (pa & pb) and len(pa | pb) == ALL_OUTPUT_PARTITIONS
    await eventually(split, 90, "the two bridges to share all output partitions")

    tag = uuid.uuid4().hex[:8]
    events = _events(tag, 40)
    ids = {f"{tag}-{i}" for i in range(40)}
    url = "/api/v1/ws/events"
    async with ws_client(a.replace("http", "ws") + url) as (ca, _), \
            ws_client(b.replace("http", "ws") + url) as (cb, _), \
            producer(kafka_bootstrap) as p:
        futs = [await p.send(t, key=k.encode(), value=v) for t, k, v in events]
        await asyncio.gather(*futs)
        for c in (ca, cb):
            await c.wait_for(_received(c, ids), 60, "all 40 events on each client")
        # Then a second wave on the same keys: once it is in, any duplicate of the first
        # wave would have arrived before it (per-partition order through one bridge).
        wave2 = _events(tag + "-late", 40)
        futs = [await p.send(t, key=k.encode(), value=v) for t, k, v in wave2]
        await asyncio.gather(*futs)
        late = {f"{tag}-late-{i}" for i in range(40)}
        for c in (ca, cb):
            await c.wait_for(_received(c, late), 60, "the second wave on each client")
    for c in (ca, cb):
        counts = Counter(e["event_id"] for e in c.events() if e["event_id"].startswith(tag))
        assert set(counts) == ids | late
        assert all(n == 1 for n in counts.values()), counts.most_common(3)
    # Each process forwarded part of the events, none forwarded all: the group split them.
    forwarded = [stack_health(a), stack_health(b)]
    assert all(f > 0 for f in forwarded), forwarded


def stack_health(base: str) -> int:
    from tests.integration.services import http_json

    return int(http_json(f"{base}/health")["bridge"]["forwarded"])
