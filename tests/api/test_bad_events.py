"""The hub listener without Kafka or Redis: junk is dropped and counted, a failure restarts it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pytest_aiohttp import AiohttpClient

from api.app import create_app
from schemas.events import SystemAlert, encode
from streams.settings import Settings
from tests.api.fakes import Client, Fakes, FakeSubscriber

T = datetime(2026, 1, 1, tzinfo=UTC)
JUNK = [
    b"\xff\xfe not utf-8",
    b"[" * 5000 + b"]" * 5000,
    b'"system_alert"',
    b'{"event_type": ["system_alert"], "event_id": "j1"}',
    b'{"event_type": "system_alert", "event_id": ["j2"]}',
    b'{"event_type": {"x": 1}, "event_id": "j3"}',
    b'{"event_type": 7, "event_id": "j4"}',
    b"",
]


def alert(event_id: str) -> bytes:
    return encode(SystemAlert(event_id=event_id, occurred_at=T, alert_type="t",
                              severity="info", message=event_id))


async def test_junk_is_dropped_and_counted_and_the_next_event_arrives(
        client: Client, fakes: Fakes) -> None:
    ws = await client.ws_connect("/api/v1/ws/events")
    await ws.receive_json(timeout=5)
    for junk in JUNK:
        await fakes.subscriber.put("system.alert", junk)
    await fakes.subscriber.put("system.alert", alert("good-1"))
    msg = await ws.receive_json(timeout=5)
    assert (msg["type"], msg["data"]["event_id"]) == ("system_alert", "good-1")
    hub = (await (await client.get("/health")).json())["hub"]
    assert hub == {"running": True, "restarts": 0, "last_error": None, "malformed": len(JUNK)}
    await ws.close()


async def test_a_failed_subscription_is_restarted_and_the_next_event_arrives(
        client: Client, fakes: Fakes) -> None:
    ws = await client.ws_connect("/api/v1/ws/events")
    await ws.receive_json(timeout=5)
    await fakes.subscriber.put("system.alert", alert("before"))
    assert (await ws.receive_json(timeout=5))["data"]["event_id"] == "before"
    await fakes.subscriber.queue.put(ConnectionResetError("subscription lost"))
    await fakes.subscriber.put("system.alert", alert("after"))
    msg = await ws.receive_json(timeout=5)
    assert (msg["type"], msg["data"]["event_id"]) == ("system_alert", "after")
    assert fakes.subscriber.subscriptions == 2  # subscribed again
    hub = (await (await client.get("/health")).json())["hub"]
    assert hub["running"] is True and hub["restarts"] == 1
    assert hub["last_error"] == "ConnectionResetError: subscription lost"
    await ws.close()


async def test_health_shows_a_listener_that_keeps_failing(aiohttp_client: AiohttpClient) -> None:
    fakes = Fakes(subscriber=FakeSubscriber(failure=OSError("no route to redis")))
    client = await aiohttp_client(create_app(Settings(), fakes.deps()))

    async def restarted() -> dict[str, object]:
        while True:
            hub: dict[str, object] = (await (await client.get("/health")).json())["hub"]
            if isinstance(hub["restarts"], int) and hub["restarts"] >= 2:
                return hub
            await asyncio.sleep(0.05)

    hub = await asyncio.wait_for(restarted(), 5)  # backoff 0.2 s, then 0.4 s
    assert hub["last_error"] == "OSError: no route to redis"
    assert hub["running"] is False
