"""The hub listener without Kafka or Redis: junk is dropped and counted, a failure restarts it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web

from api.app import create_app
from schemas.events import SystemAlert, encode
from streams.settings import Settings
from tests.api.test_api import FakeProducer

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
#: Put on the queue to make the fake subscription raise (once per sentinel).
BOOM = b"<raise>"


def alert(event_id: str) -> bytes:
    return encode(SystemAlert(event_id=event_id, occurred_at=T, alert_type="t",
                              severity="info", message=event_id))


@pytest.fixture
def queue() -> asyncio.Queue[bytes]:
    return asyncio.Queue()


@pytest.fixture
def calls() -> list[int]:
    return []


@pytest.fixture
async def client(aiohttp_client, queue, calls):  # type: ignore[no-untyped-def]
    async def subscribe() -> AsyncIterator[tuple[str, bytes]]:
        calls.append(1)
        while True:
            payload = await queue.get()
            if payload == BOOM:
                raise ConnectionResetError("subscription lost")
            yield "system.alert", payload

    app: web.Application = create_app(Settings(), subscribe=subscribe,  # type: ignore[arg-type]
                                      producer=FakeProducer(), start_bridge=False)  # type: ignore[arg-type]
    return await aiohttp_client(app)


async def test_junk_is_dropped_and_counted_and_the_next_event_arrives(client, queue) -> None:  # type: ignore[no-untyped-def]
    ws = await client.ws_connect("/api/v1/ws/events")
    await ws.receive_json(timeout=5)
    for junk in JUNK:
        await queue.put(junk)
    await queue.put(alert("good-1"))
    msg = await ws.receive_json(timeout=5)
    assert (msg["type"], msg["data"]["event_id"]) == ("system_alert", "good-1")
    hub = (await (await client.get("/health")).json())["hub"]
    assert hub == {"running": True, "restarts": 0, "last_error": None, "malformed": len(JUNK)}
    await ws.close()


async def test_a_failed_subscription_is_restarted_and_the_next_event_arrives(
        client, queue, calls) -> None:  # type: ignore[no-untyped-def]
    ws = await client.ws_connect("/api/v1/ws/events")
    await ws.receive_json(timeout=5)
    await queue.put(alert("before"))
    assert (await ws.receive_json(timeout=5))["data"]["event_id"] == "before"
    await queue.put(BOOM)
    await queue.put(alert("after"))
    msg = await ws.receive_json(timeout=5)
    assert (msg["type"], msg["data"]["event_id"]) == ("system_alert", "after")
    assert len(calls) == 2  # subscribed again
    hub = (await (await client.get("/health")).json())["hub"]
    assert hub["running"] is True and hub["restarts"] == 1
    assert hub["last_error"] == "ConnectionResetError: subscription lost"
    await ws.close()


async def test_health_shows_a_listener_that_keeps_failing(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    async def subscribe() -> AsyncIterator[tuple[str, bytes]]:
        raise OSError("no route to redis")
        yield  # an async generator  # pragma: no cover

    app = create_app(Settings(), subscribe=subscribe, producer=FakeProducer(),  # type: ignore[arg-type]
                     start_bridge=False)
    client = await aiohttp_client(app)

    async def restarted() -> dict[str, object]:
        while True:
            hub = (await (await client.get("/health")).json())["hub"]
            if hub["restarts"] >= 2:
                return hub  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)

    hub = await asyncio.wait_for(restarted(), 5)  # backoff 0.2 s, then 0.4 s
    assert hub["last_error"] == "OSError: no route to redis"
