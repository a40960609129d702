"""Test clients: a WebSocket collector and a Kafka producer/consumer, with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.readings import Reading, encode_reading


class WsCollector:
    """Collects every JSON message of one WebSocket in the background."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The ``data`` of received events, optionally of one type."""
        return [m["data"] for m in self.messages
                if "data" in m and (event_type is None or m["type"] == event_type)]

    async def wait_for(self, predicate: Callable[[list[dict[str, Any]]], Any], timeout: float,
                       what: str) -> Any:
        """Wait until ``predicate(messages)`` is truthy; fail with ``what`` at the deadline."""
        async def loop() -> Any:
            while True:
                result = predicate(self.messages)
                if result:
                    return result
                self._changed.clear()
                await self._changed.wait()
        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            types = [m.get("type") for m in self.messages][-20:]
            msg = f"timed out after {timeout}s waiting for {what}; last message types: {types}"
            raise AssertionError(msg) from None

    async def run(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(orjson.loads(msg.data))
                self._changed.set()


@contextlib.asynccontextmanager
async def ws_client(url: str) -> AsyncIterator[tuple[WsCollector, aiohttp.ClientWebSocketResponse]]:
    """Connect, wait for the connection message, collect until the block ends."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        c = WsCollector()
        task = asyncio.create_task(c.run(ws))
        try:
            await c.wait_for(lambda ms: any(m.get("type") == "connection" for m in ms), 10,
                             "the connection message")
            yield c, ws
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def producer(bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """A started aiokafka producer."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def consume(bootstrap: str, topic: str, until: Callable[[list[Any]], bool],
                  timeout: float) -> list[Any]:
    """Read a topic from the beginning (no group) until ``until(records)`` holds."""
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                         enable_auto_commit=False, group_id=None)
    await c.start()
    records: list[Any] = []
    try:
        async def loop() -> None:
            while not until(records):
                batch = await c.getmany(timeout_ms=200)
                for recs in batch.values():
                    records.extend(recs)
        await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        msg = f"timed out after {timeout}s reading {topic}; got {len(records)} records"
        raise AssertionError(msg) from None
    finally:
        await c.stop()
    return records


def steady_readings(machine_id: str, start: datetime, count: int, *, level: float,
                    interval_s: int = 30, seed: int = 0) -> list[Reading]:
    """``count`` readings around ``level`` kW with 2.5 % Gaussian noise, producing at a
    steady 100 units/h (the driver model judges them from the first day; a meter with power
    only is judged by its hours of the week once it has seen them)."""
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        p = max(0.0, rnd.gauss(level, 0.025 * level))
        out.append(Reading(machine_id=machine_id, timestamp=start + timedelta(seconds=interval_s * i),
                           power_kw=p, energy_kwh=p * interval_s / 3600,
                           throughput_units_per_hour=100.0))
    return out


async def send_readings(p: AIOKafkaProducer, topic: str, readings: list[Reading]) -> None:
    """Produce readings keyed by machine, and wait for the acks."""
    futs = [await p.send(topic, key=r.machine_id.encode(), value=encode_reading(r),
                         timestamp_ms=int(r.timestamp.timestamp() * 1000))
            for r in readings]
    await asyncio.gather(*futs)
