"""Malformed events on an output topic or a Redis channel: skipped and counted, never raised.

Property tests over arbitrary bytes and arbitrary JSON values (with the routing fields of an
event drawn from any JSON value, to reach the checks after parsing), plus the known cases:
a Kafka tombstone, non-UTF-8, huge and deeply nested JSON.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import example, given
from hypothesis import strategies as st

from api.bridge import MAX_EVENT_BYTES, BridgeStats, _publish_until_done, _route, channel_of
from api.hub import GROUPS, Client, Hub
from schemas.events import AnomalyDetected, encode
from streams.topics import REDIS_CHANNELS

T = datetime(2026, 1, 1, tzinfo=UTC)
M1 = "c0000000-0000-0000-0000-000000000001"
GOOD = encode(AnomalyDetected(
    event_id="6f1c3c1e-0000-4000-8000-00000000900d", occurred_at=T, machine_id=M1,
    machine_name="m", timestamp=T,
    metric="power_kw", value=1.0, expected_value=None, deviation_percent=None, score=1.0,
    threshold=0.9, anomaly_score=9.0, severity="critical", anomaly_type="spike", detector="t"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)
#: Objects shaped like an event header whose fields may be anything (or missing).
field_values = json_values | st.sampled_from([*REDIS_CHANNELS, "e1", M1, ""])
headers = st.fixed_dictionaries({}, optional={
    "event_type": field_values, "event_id": field_values, "machine_id": field_values,
    "value": json_values})

KNOWN_BAD = [
    None,  # a Kafka tombstone
    b"",
    b"\xff\xfe\x00junk",  # not UTF-8
    b'{"event_type": "system_alert", "event_id": "x", "message": "\xff"}',  # bad UTF-8 inside
    b"[" * 5000 + b"]" * 5000,  # too deep
    b'{"event_type": "system_alert", "event_id": "x", "d": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"event_type": "system_alert", "event_id": "x", "pad": "'
    + b"a" * MAX_EVENT_BYTES + b'"}',  # huge
    b'{"event_type": "system_alert", "event_id": "x", "v": NaN}',
    b'"anomaly_detected"', b"[]", b"42", b"null",
    b'{"event_id": "x"}', b'{"event_type": ["anomaly_detected"], "event_id": "x"}',
    b'{"event_type": {"a": 1}, "event_id": "x"}', b'{"event_type": "nope", "event_id": "x"}',
    b'{"event_type": "anomaly_detected"}', b'{"event_type": "anomaly_detected", "event_id": ["x"]}',
    b'{"event_type": "anomaly_detected", "event_id": ""}',
    b'{"event_type": "anomaly_detected", "event_id": "x", "machine_id": ["m"]}',
    "a str, not bytes",
]


def fake_client(path: str, machine_id: str | None = None) -> Client:
    # Never prepared: publish only queues frames; nothing is sent on the socket.
    return Client(ws=web.WebSocketResponse(), client_id=path, connection_type=path,
                  machine_id=machine_id)


def with_clients() -> tuple[Hub, list[Client]]:
    hub = Hub()
    clients = [fake_client(p) for p in GROUPS] + [fake_client("anomalies", M1)]
    hub.clients.update(clients)
    return hub, clients


@pytest.mark.parametrize("payload", KNOWN_BAD, ids=range(len(KNOWN_BAD)))
def test_known_bad_payloads_have_no_channel_and_are_dropped_by_the_hub(payload: Any) -> None:
    assert channel_of(payload) is None
    hub, clients = with_clients()
    assert hub.publish(payload) == 0
    assert hub.malformed == 1
    assert all(c.queue.empty() for c in clients)


any_payload = st.binary() | json_values.map(orjson.dumps) | headers.map(orjson.dumps)


@given(any_payload)
@example(b"\xed\xa0\x80")  # a UTF-8-encoded lone surrogate
def test_channel_of_never_raises(payload: bytes) -> None:
    channel = channel_of(payload)
    assert channel is None or channel in REDIS_CHANNELS.values()
    if channel is not None:
        head = orjson.loads(payload)
        assert REDIS_CHANNELS[head["event_type"]] == channel
        assert isinstance(head["event_id"], str)


@given(st.lists(any_payload, max_size=5))
def test_hub_never_raises_and_delivers_the_good_event_after_any_junk(junk: list[bytes]) -> None:
    hub, clients = with_clients()
    for payload in junk:
        hub.publish(payload)  # must not raise
    for c in clients:  # whatever junk got through (a valid event by chance), drop it
        while not c.queue.empty():
            frame = orjson.loads(c.queue.get_nowait())  # every frame is JSON
            assert frame["type"] in REDIS_CHANNELS
    assert hub.publish(GOOD) == len(clients) - 1  # all but the training path
    for c in clients:
        if c.connection_type == "training":
            assert c.queue.empty()
            continue
        frame = orjson.loads(c.queue.get_nowait())
        assert frame == {"type": "anomaly_detected", "data": orjson.loads(GOOD)}


@given(headers)
def test_hub_counts_what_it_drops(head: dict[str, Any]) -> None:
    hub, _ = with_clients()
    delivered = hub.publish(orjson.dumps(head))
    well_formed = channel_of(orjson.dumps(head)) is not None
    assert hub.malformed == (0 if well_formed else 1)
    assert delivered == 0 or well_formed


# -- The bridge's routing of a fetched batch ---------------------------------------------


def rec(topic: str, partition: int, offset: int, value: bytes | None) -> SimpleNamespace:
    return SimpleNamespace(topic=topic, partition=partition, offset=offset, value=value)


def test_route_skips_counts_and_logs_junk_with_where_it_is(caplog: pytest.LogCaptureFixture) -> None:
    stats = BridgeStats()
    batches = {"alerts": [rec("enms.alerts", 0, 7, None), rec("enms.alerts", 0, 8, b"\xff")],
               "anomalies": [rec("enms.anomalies", 3, 41, b'{"event_type": []}'),
                             rec("enms.anomalies", 3, 42, GOOD)]}
    with caplog.at_level(logging.WARNING, logger="api.bridge"):
        routed = _route(batches, stats)
    assert routed == [("anomaly.detected", GOOD)]
    assert (stats.malformed, stats.skipped) == (3, 3)
    text = caplog.text
    assert "enms.alerts[0]@7" in text and "tombstone" in text
    assert "enms.alerts[0]@8" in text and "enms.anomalies[3]@41" in text
    assert "@42" not in text


def test_route_logs_a_flood_of_junk_in_a_bounded_number_of_lines(
        caplog: pytest.LogCaptureFixture) -> None:
    stats = BridgeStats()
    batches = {"m": [rec("enms.metrics", 0, i, b"junk") for i in range(500)]}
    with caplog.at_level(logging.WARNING, logger="api.bridge"):
        assert _route(batches, stats) == []
    assert stats.malformed == 500
    assert len(caplog.records) <= 11 and "490 more" in caplog.text


class FlakyRedis:
    """A Redis whose first pipeline fails; records what was published."""

    def __init__(self) -> None:
        self.failures = 1
        self.published: list[tuple[str, bytes]] = []

    def pipeline(self, transaction: bool) -> FlakyRedis:
        self.pending: list[tuple[str, bytes]] = []
        return self

    async def __aenter__(self) -> FlakyRedis:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    def publish(self, channel: str, payload: bytes) -> None:
        self.pending.append((channel, payload))

    async def execute(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("redis down")
        self.published.extend(self.pending)


async def test_a_redis_retry_neither_recounts_nor_republishes_junk() -> None:
    stats, redis = BridgeStats(), FlakyRedis()
    batches = {"a": [rec("enms.alerts", 0, 1, b"junk"), rec("enms.alerts", 0, 2, GOOD)]}
    routed = _route(batches, stats)
    publish = _publish_until_done(redis, routed, stats)  # type: ignore[arg-type]  # a fake aioredis.Redis
    await asyncio.wait_for(publish, 5)
    assert redis.published == [("anomaly.detected", GOOD)]
    assert (stats.forwarded, stats.malformed, stats.redis_errors) == (1, 1, 1)
