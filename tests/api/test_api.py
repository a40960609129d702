"""The views of api/views.py and api/ws.py over in-memory ports: machines, the readings
ingest, /health, the WebSockets."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from schemas.events import SystemAlert, TrainingStarted, encode
from streams.settings import Settings
from tests.api.fakes import M1, Client, Fakes, FakeSubscriber, anomaly_event, reading

M2 = "c0000000-0000-0000-0000-000000000002"
T = datetime(2026, 1, 1, tzinfo=UTC)


async def test_post_readings_produces_each_keyed_by_machine(client: Client, fakes: Fakes) -> None:
    resp = await client.post("/api/v1/readings", json=[reading(), reading(power_kw=41.0)])
    assert resp.status == 202
    assert await resp.json() == {"accepted": 2, "topic": "enms.readings"}
    sent = fakes.publisher.sent
    assert [(t, k) for t, k, _ in sent] == [("enms.readings", M1.encode())] * 2
    assert [r.power_kw for r in fakes.publisher.records("enms.readings")] == [40.0, 41.0]
    assert orjson.loads(sent[1][2])["power_kw"] == 41.0


@pytest.mark.parametrize(("bad", "loc"), [
    (reading(power_kw="x"), ["body", 1, "power_kw"]),
    ({k: v for k, v in reading().items() if k != "timestamp"}, ["body", 1, "timestamp"]),
    (reading(timestamp="2026-01-05T08:00:00"), ["body", 1, "timestamp"]),
    (reading(machine_id="nope"), ["body", 1, "machine_id"]),
    (reading(power_kw=-1), ["body", 1, "power_kw"]),
])
async def test_post_readings_422_names_index_and_field(
        client: Client, fakes: Fakes, bad: object, loc: list[object]) -> None:
    resp = await client.post("/api/v1/readings", json=[reading(), bad])
    assert resp.status == 422
    detail = (await resp.json())["detail"][0]
    assert detail["loc"] == loc
    assert detail["msg"]
    assert fakes.publisher.sent == []  # all or nothing


async def test_post_readings_rejects_nan_and_bad_json(client: Client, fakes: Fakes) -> None:
    resp = await client.post("/api/v1/readings", data=b'[{"power_kw": ',
                             headers={"Content-Type": "application/json"})
    assert resp.status == 422
    body = (b'[{"machine_id": "%s", "timestamp": "2026-01-05T08:00:00Z", "power_kw": 1,'
            b' "energy_kwh": 1, "outdoor_temp_c": NaN}]' % M1.encode())
    resp = await client.post("/api/v1/readings", data=body,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 422
    assert (await resp.json())["detail"][0]["loc"] == ["body", 0, "outdoor_temp_c"]
    assert fakes.publisher.sent == []


async def test_readings_without_a_publisher_yet_are_503(aiohttp_client: AiohttpClient,
                                                        fakes: Fakes) -> None:
    deps = fakes.deps()
    deps.publisher = None  # the real producer, started in the background: Kafka not up yet
    app = create_app(Settings(kafka_bootstrap="127.0.0.1:9"), deps)
    client = await aiohttp_client(app)
    resp = await client.post("/api/v1/readings", json=[reading()])
    assert resp.status == 503 and resp.headers["Retry-After"] == "5"
    assert await resp.json() == {"detail": "Kafka producer not available yet"}


async def test_machines(client: Client) -> None:
    all_ = await (await client.get("/api/v1/machines")).json()
    assert len(all_) == 9 and all_[0]["name"] == "Compressor-1"
    assert all_[0]["id"] == M1
    hvac = await (await client.get("/api/v1/machines?search=hvac")).json()
    assert [m["type"] for m in hvac] == ["hvac"]
    lights = await (await client.get("/api/v1/machines?search=lighting")).json()
    assert [m["name"] for m in lights] == ["Lighting-Hall-1"]  # the power-only meter
    active = await (await client.get("/api/v1/machines?is_active=true")).json()
    assert active and all(m["is_active"] for m in active)
    one = await client.get(f"/api/v1/machines/{M1}")
    assert one.status == 200 and (await one.json())["name"] == "Compressor-1"
    missing = await client.get("/api/v1/machines/nope")
    assert missing.status == 404
    assert await missing.json() == {"detail": "machine nope not found"}
    bad = await client.get("/api/v1/machines?is_active=maybe")
    assert bad.status == 422
    assert (await bad.json())["detail"][0]["loc"] == ["query", "is_active"]


async def test_websocket_connection_events_and_both_pings(client: Client, fakes: Fakes) -> None:
    ws = await client.ws_connect("/api/v1/ws/events?client_id=abc")
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "connection" and hello["client_id"] == "abc"
    assert hello["connection_type"] == "events"
    await ws.send_str("ping")
    assert (await ws.receive_json(timeout=5))["type"] == "pong"
    await ws.send_str('{"type": "ping"}')
    assert (await ws.receive_json(timeout=5))["type"] == "pong"
    e = SystemAlert(event_id="e1", occurred_at=T, alert_type="t", severity="info",
                    message="hello")
    await fakes.subscriber.put("system.alert", encode(e))
    await fakes.subscriber.put("system.alert", encode(e))  # a re-delivery: dropped by event_id
    e2 = SystemAlert(event_id="e2", occurred_at=T, alert_type="t", severity="info",
                     message="again")
    await fakes.subscriber.put("system.alert", encode(e2))
    got = [await ws.receive_json(timeout=5), await ws.receive_json(timeout=5)]
    assert [(m["type"], m["data"]["event_id"]) for m in got] == [
        ("system_alert", "e1"), ("system_alert", "e2")]
    health = await (await client.get("/health")).json()
    assert health["websocket"]["duplicates_dropped"] == 1
    await ws.close()


async def test_anomalies_path_filters_types_and_machine(client: Client, fakes: Fakes) -> None:
    ws = await client.ws_connect(f"/api/v1/ws/anomalies?machine_id={M1}")
    await ws.receive_json(timeout=5)
    alert = SystemAlert(event_id="a1", occurred_at=T, alert_type="t", severity="info",
                        message="x", machine_id=M1)
    await fakes.subscriber.put("system.alert", encode(alert))
    await fakes.subscriber.put("anomaly.detected", encode(anomaly_event("x-other", M2, T)))
    await fakes.subscriber.put("anomaly.detected", encode(anomaly_event("x-mine", M1, T)))
    msg = await ws.receive_json(timeout=5)
    assert (msg["type"], msg["data"]["event_id"]) == ("anomaly_detected", "x-mine")
    await ws.close()


async def test_training_path_takes_training_events_of_any_machine(
        client: Client, fakes: Fakes) -> None:
    ws = await client.ws_connect("/api/v1/ws/training")
    assert (await ws.receive_json(timeout=5))["connection_type"] == "training"
    await fakes.subscriber.put("anomaly.detected", encode(anomaly_event("x1", M1, T)))
    started = TrainingStarted(event_id="s1", occurred_at=T, machine_id=M2, model_type="baseline",
                              training_job_id="j1", job_id="j1")
    await fakes.subscriber.put("training.started", encode(started))
    msg = await ws.receive_json(timeout=5)
    assert (msg["type"], msg["data"]["training_job_id"]) == ("training_started", "j1")
    await ws.close()


async def test_a_machine_filter_still_gets_events_of_no_machine(
        client: Client, fakes: Fakes) -> None:
    ws = await client.ws_connect(f"/api/v1/ws/dashboard?machine_id={M1}")
    hello = await ws.receive_json(timeout=5)
    assert hello["client_id"]  # made up when not given
    other = SystemAlert(event_id="o", occurred_at=T, alert_type="t", severity="info",
                        message="x", machine_id=M2)
    general = SystemAlert(event_id="g", occurred_at=T, alert_type="t", severity="info",
                          message="x")
    await fakes.subscriber.put("system.alert", encode(other))
    await fakes.subscriber.put("system.alert", encode(general))
    assert (await ws.receive_json(timeout=5))["data"]["event_id"] == "g"
    await ws.close()


async def test_unknown_websocket_path_is_404(client: Client) -> None:
    resp = await client.get("/api/v1/ws/nope")
    assert resp.status == 404
    assert await resp.json() == {
        "detail": "no WebSocket 'nope'; use one of dashboard, anomalies, training, events"}


async def test_health_is_healthy_with_kafka_and_redis_answering(client: Client) -> None:
    resp = await client.get("/health")
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "healthy"
    assert body["kafka"] == {"connected": True, "bootstrap": Settings().kafka_bootstrap}
    assert body["redis"] == {"connected": True}
    assert body["bridge"] is None  # the app was given its subscriber: no bridge to feed it
    assert body["hub"] == {"running": True, "restarts": 0, "last_error": None, "malformed": 0}


async def test_health_reports_websockets_and_degraded_without_redis(
        aiohttp_client: AiohttpClient) -> None:
    fakes = Fakes(subscriber=FakeSubscriber(connected=False))
    client = await aiohttp_client(create_app(Settings(), fakes.deps()))
    ws = await client.ws_connect("/api/v1/ws/dashboard")
    await ws.receive_json(timeout=5)
    resp = await client.get("/health")
    body = await resp.json()
    assert resp.status == 503 and body["status"] == "degraded"
    assert body["kafka"]["connected"] is True and body["redis"]["connected"] is False
    assert body["websocket"]["by_type"]["dashboard"] == 1
    assert body["websocket"]["connections"] == 1
    await ws.close()


async def test_health_is_degraded_while_kafka_does_not_answer(client: Client,
                                                              fakes: Fakes) -> None:
    fakes.publisher.up = False
    resp = await client.get("/health")
    assert resp.status == 503
    body = await resp.json()
    assert (body["status"], body["kafka"]["connected"]) == ("degraded", False)
    assert body["requests"]["by_status"] == {}  # /health counts once it has answered
