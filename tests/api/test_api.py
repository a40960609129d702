"""The aiohttp app without Kafka or Redis: fake subscribe, fake producer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import web

from api.app import create_app
from schemas.events import SystemAlert, encode
from streams.settings import Settings

M1 = "c0000000-0000-0000-0000-000000000001"


class FakeCluster:
    def leader_for_partition(self, tp: object) -> int:
        return 1


class FakeClient:
    """The part of aiokafka's client the ingest asks: is the partitions' leader reachable?"""

    def __init__(self) -> None:
        self.cluster = FakeCluster()
        self.reachable = True

    async def ready(self, node_id: int) -> bool:
        return self.reachable


class FakeProducer:
    """Records what would go to Kafka (the aiokafka send() shape: awaitable -> future).

    ``acks`` limits how many sends are ever acknowledged (None: all); the rest stay pending,
    as with a broker that stopped answering.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.client = FakeClient()
        self.acks: int | None = None

    async def send(self, topic: str, key: bytes, value: bytes,
                   timestamp_ms: int | None = None) -> asyncio.Future[None]:
        self.sent.append((topic, key, value))
        f: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.acks is None or len(self.sent) <= self.acks:
            f.set_result(None)
        return f

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def stop(self) -> None:
        pass


@pytest.fixture
def queue() -> asyncio.Queue[tuple[str, bytes]]:
    return asyncio.Queue()


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
async def client(aiohttp_client, queue, producer):  # type: ignore[no-untyped-def]
    async def subscribe() -> AsyncIterator[tuple[str, bytes]]:
        while True:
            yield await queue.get()

    app: web.Application = create_app(Settings(), subscribe=subscribe, producer=producer,  # type: ignore[arg-type]
                                      start_bridge=False)
    return await aiohttp_client(app)


def reading(**over: Any) -> dict[str, Any]:
    r = {"machine_id": M1, "timestamp": "2026-01-05T08:00:00+00:00", "power_kw": 40.0,
         "energy_kwh": 0.011}
    r.update(over)
    return r


async def test_post_readings_produces_each_keyed_by_machine(client, producer) -> None:  # type: ignore[no-untyped-def]
    resp = await client.post("/api/v1/readings", json=[reading(), reading(power_kw=41.0)])
    assert resp.status == 202
    assert (await resp.json())["accepted"] == 2
    assert [(t, k) for t, k, _ in producer.sent] == [("enms.readings", M1.encode())] * 2
    assert orjson.loads(producer.sent[1][2])["power_kw"] == 41.0


@pytest.mark.parametrize(("bad", "loc"), [
    (reading(power_kw="x"), ["body", 1, "power_kw"]),
    ({k: v for k, v in reading().items() if k != "timestamp"}, ["body", 1, "timestamp"]),
    (reading(timestamp="2026-01-05T08:00:00"), ["body", 1, "timestamp"]),
    (reading(machine_id="nope"), ["body", 1, "machine_id"]),
    (reading(power_kw=-1), ["body", 1, "power_kw"]),
])
async def test_post_readings_422_names_index_and_field(client, producer, bad, loc) -> None:  # type: ignore[no-untyped-def]
    resp = await client.post("/api/v1/readings", json=[reading(), bad])
    assert resp.status == 422
    detail = (await resp.json())["detail"][0]
    assert detail["loc"] == loc
    assert detail["msg"]
    assert producer.sent == []  # all or nothing


async def test_post_readings_rejects_nan_and_bad_json(client, producer) -> None:  # type: ignore[no-untyped-def]
    resp = await client.post("/api/v1/readings", data=b'[{"power_kw": ',
                             headers={"Content-Type": "application/json"})
    assert resp.status == 422
    body = (b'[{"machine_id": "%s", "timestamp": "2026-01-05T08:00:00Z", "power_kw": 1,'
            b' "energy_kwh": 1, "outdoor_temp_c": NaN}]' % M1.encode())
    resp = await client.post("/api/v1/readings", data=body,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 422
    assert (await resp.json())["detail"][0]["loc"] == ["body", 0, "outdoor_temp_c"]
    assert producer.sent == []


async def test_machines(client) -> None:  # type: ignore[no-untyped-def]
    all_ = await (await client.get("/api/v1/machines")).json()
    assert len(all_) == 8 and all_[0]["name"] == "Compressor-1"
    hvac = await (await client.get("/api/v1/machines?search=hvac")).json()
    assert [m["type"] for m in hvac] == ["hvac"]
    assert (await client.get(f"/api/v1/machines/{M1}")).status == 200
    assert (await client.get("/api/v1/machines/nope")).status == 404
    assert (await client.get("/api/v1/machines?is_active=maybe")).status == 422


async def test_websocket_connection_events_and_both_pings(client, queue) -> None:  # type: ignore[no-untyped-def]
    ws = await client.ws_connect("/api/v1/ws/events?client_id=abc")
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "connection" and hello["client_id"] == "abc"
    assert hello["connection_type"] == "events"
    await ws.send_str("ping")
    assert (await ws.receive_json(timeout=5))["type"] == "pong"
    await ws.send_str('{"type": "ping"}')
    assert (await ws.receive_json(timeout=5))["type"] == "pong"
    e = SystemAlert(event_id="e1", occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                    alert_type="t", severity="info", message="hello")
    await queue.put(("system.alert", encode(e)))
    await queue.put(("system.alert", encode(e)))  # a re-delivery: dropped by event_id
    e2 = SystemAlert(event_id="e2", occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                     alert_type="t", severity="info", message="again")
    await queue.put(("system.alert", encode(e2)))
    got = [await ws.receive_json(timeout=5), await ws.receive_json(timeout=5)]
    assert [(m["type"], m["data"]["event_id"]) for m in got] == [
        ("system_alert", "e1"), ("system_alert", "e2")]
    await ws.close()


async def test_anomalies_path_filters_types_and_machine(client, queue) -> None:  # type: ignore[no-untyped-def]
    ws = await client.ws_connect(f"/api/v1/ws/anomalies?machine_id={M1}")
    await ws.receive_json(timeout=5)
    t = datetime(2026, 1, 1, tzinfo=UTC)
    alert = SystemAlert(event_id="a1", occurred_at=t, alert_type="t", severity="info",
                        message="x", machine_id=M1)
    await queue.put(("system.alert", encode(alert)))
    from schemas.events import AnomalyDetected
    def anomaly(eid: str, mid: str) -> bytes:
        return encode(AnomalyDetected(
            event_id=eid, occurred_at=t, machine_id=mid, machine_name="m", timestamp=t,
            metric="power_kw", value=1.0, expected_value=None, deviation_percent=None,
            score=1.0, threshold=0.9, anomaly_score=9.0, severity="critical",
            anomaly_type="spike", detector="hst"))
    await queue.put(("anomaly.detected", anomaly("x-other", "c0000000-0000-0000-0000-000000000002")))
    await queue.put(("anomaly.detected", anomaly("x-mine", M1)))
    msg = await ws.receive_json(timeout=5)
    assert (msg["type"], msg["data"]["event_id"]) == ("anomaly_detected", "x-mine")
    await ws.close()


async def test_unknown_websocket_path_is_404(client) -> None:  # type: ignore[no-untyped-def]
    assert (await client.get("/api/v1/ws/nope")).status == 404


async def test_health_reports_websockets_and_degraded_without_redis(client) -> None:  # type: ignore[no-untyped-def]
    ws = await client.ws_connect("/api/v1/ws/dashboard")
    await ws.receive_json(timeout=5)
    resp = await client.get("/health")
    body = await resp.json()
    assert resp.status == 503 and body["status"] == "degraded"  # no Redis in this test
    assert body["kafka"]["connected"] is True
    assert body["websocket"]["by_type"]["dashboard"] == 1
    await ws.close()
