"""Kafka -> Redis bridge, and the Redis subscription that feeds the hub.

Forwarding uses one Kafka consumer group for all API processes, so each event is published to
Redis once however many processes run; every process subscribes to Redis, so each delivers
every event to its own clients. Offsets are committed only after Redis accepted the batch:
an event is forwarded at least once, and the hub's dedupe by ``event_id`` makes it once for
a client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from streams.settings import Settings
from streams.topics import OUTPUT_TOPICS, REDIS_CHANNELS

log = logging.getLogger(__name__)

#: Largest payload taken as an event: the broker's default record limit (``message.max.bytes``),
#: so nothing the bridge can read is refused; real events are under 2 KB. Only Redis, which
#: takes any size, can carry more.
MAX_EVENT_BYTES = 1024 * 1024
#: Malformed records logged one by one per fetched batch; the rest get one summary line.
_LOGGED_PER_BATCH = 10


@dataclass
class BridgeStats:
    """What the bridge did, for /health and the tests."""

    forwarded: int = 0
    #: Records on an output topic that are not well-formed events: skipped and committed past.
    malformed: int = 0
    redis_errors: int = 0
    assigned: list[str] = field(default_factory=list)
    running: bool = False

    @property
    def skipped(self) -> int:
        """Records not forwarded; the old name of `malformed` (every skip is one)."""
        return self.malformed


class NotAnEvent(ValueError):
    """A payload that is not a well-formed event; the message says why."""


class Head(NamedTuple):
    """The fields of an event the bridge and the hub route by."""

    event_type: str
    event_id: str
    machine_id: str | None


def event_head(payload: object) -> Head:
    """Check that ``payload`` is a well-formed event and return its routing fields.

    Well-formed: bytes of at most `MAX_EVENT_BYTES`, valid UTF-8 JSON (orjson: no NaN, at
    most 1024 levels deep) holding an object whose ``event_type`` is a known event type,
    ``event_id`` a non-empty string and ``machine_id``, if present, a string or null.

    Only this header is checked, not the whole event with ``schemas.events.decode_event``.
    It is not a matter of cost (measured on a 474-byte metric event: 1.3 us for orjson.loads,
    0.9 us for decode_event; the bridge has always parsed each payload once with orjson), but
    of what each check guarantees. The hub
    splices the payload verbatim into its WebSocket frames, so the whole text must be valid
    JSON and UTF-8: orjson checks every byte, while msgspec skips fields it does not know
    without checking them (an invalid UTF-8 string there passes). And the forwarder must not
    be stricter than its readers: the worker encodes every event from the msgspec structs,
    and an API process one release behind the worker would otherwise drop, say, every
    anomaly with a new severity value. What must never happen is a crash on a record, and
    routing needs only these three fields.

    Raises
    ------
    NotAnEvent
        With the reason.

    Examples
    --------
    >>> event_head(b'{"event_type": "system_alert", "event_id": "e1"}')
    Head(event_type='system_alert', event_id='e1', machine_id=None)
    >>> event_head(None)
    Traceback (most recent call last):
    ...
    api.bridge.NotAnEvent: no value (a tombstone)
    >>> event_head(b'{"event_type": ["system_alert"], "event_id": "e1"}')
    Traceback (most recent call last):
    ...
    api.bridge.NotAnEvent: event_type is a list, not a string
    """
    if payload is None:
        raise NotAnEvent("no value (a tombstone)")
    if not isinstance(payload, bytes | bytearray):
        raise NotAnEvent(f"a {type(payload).__name__}, not bytes")
    if not payload:
        raise NotAnEvent("empty")
    if len(payload) > MAX_EVENT_BYTES:
        raise NotAnEvent(f"{len(payload)} bytes, over the {MAX_EVENT_BYTES} of an event")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        raise NotAnEvent(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise NotAnEvent(f"a JSON {_kind(obj)}, not an object")
    event_type, event_id = obj.get("event_type"), obj.get("event_id")
    machine_id = obj.get("machine_id")
    if not isinstance(event_type, str):
        raise NotAnEvent(f"event_type is {_kind(event_type)}, not a string")
    if event_type not in REDIS_CHANNELS:
        raise NotAnEvent(f"unknown event_type {event_type[:80]!r}")
    if not isinstance(event_id, str) or not event_id:
        raise NotAnEvent(f"event_id is {_kind(event_id)}, not a non-empty string")
    if machine_id is not None and not isinstance(machine_id, str):
        raise NotAnEvent(f"machine_id is {_kind(machine_id)}, not a string")
    return Head(event_type, event_id, machine_id)


def _kind(value: object) -> str:
    """What a decoded JSON value is, for a reason text."""
    if value is None:
        return "missing or null"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list",
             dict: "an object"}
    return names.get(type(value), type(value).__name__)


def channel_of(payload: object) -> str | None:
    """The Redis channel of an event payload, or None if it is not a well-formed event.

    Never raises, whatever the payload (see `event_head`).

    Examples
    --------
    >>> channel_of(b'{"event_type": "anomaly_detected", "event_id": "1"}')
    'anomaly.detected'
    >>> channel_of(b'not json') is None, channel_of(None) is None
    (True, True)
    """
    try:
        return REDIS_CHANNELS[event_head(payload).event_type]
    except NotAnEvent:
        return None


async def forward(settings: Settings, redis: aioredis.Redis, stats: BridgeStats) -> None:
    """Consume the output topics and publish each event to its Redis channel, forever."""
    consumer = AIOKafkaConsumer(
        *OUTPUT_TOPICS,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.bridge_group_id,
        enable_auto_commit=False,
        auto_offset_reset=settings.bridge_offset_reset,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval_s * 1000),
        metadata_max_age_ms=5000,
    )
    await consumer.start()
    stats.running = True
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            stats.assigned = sorted(f"{tp.topic}[{tp.partition}]" for tp in consumer.assignment())
            if not batches:
                continue
            await _publish_until_done(redis, _route(batches, stats), stats)
            await consumer.commit()  # past the malformed records too: they are never retried
    finally:
        stats.running = False
        await consumer.stop()


def _route(batches: dict, stats: BridgeStats) -> list[tuple[str, bytes]]:
    """The (channel, payload) of each well-formed event of a fetched batch, in order.

    Any other record is counted in ``stats.malformed`` and logged once with its
    ``topic[partition]@offset`` and the reason (the first few of a batch one by one, then a
    count), then left behind: the commit after publishing moves past it.
    """
    routed: list[tuple[str, bytes]] = []
    bad = 0
    for records in batches.values():
        for rec in records:
            try:
                head = event_head(rec.value)
            except NotAnEvent as e:
                bad += 1
                if bad <= _LOGGED_PER_BATCH:
                    log.warning("bridge: skipped a record that is not an event at %s[%s]@%s: %s",
                                rec.topic, rec.partition, rec.offset, e)
                continue
            routed.append((REDIS_CHANNELS[head.event_type], rec.value))
    if bad > _LOGGED_PER_BATCH:
        log.warning("bridge: skipped %d more records that are not events in this batch",
                    bad - _LOGGED_PER_BATCH)
    stats.malformed += bad
    return routed


async def _publish_until_done(redis: aioredis.Redis, routed: list[tuple[str, bytes]],
                              stats: BridgeStats) -> None:
    """Publish a routed batch; while Redis is down, retry with backoff (nothing is dropped)."""
    if not routed:
        return
    delay = 0.2
    while True:
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for channel, payload in routed:
                    pipe.publish(channel, payload)
                await pipe.execute()
            stats.forwarded += len(routed)
            return
        except (RedisError, OSError) as e:
            stats.redis_errors += 1
            log.warning("bridge: Redis publish failed (%s); retrying in %.1fs", e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class RedisSubscriber:
    """`api.ports.Subscriber` over the six Redis channels; it reconnects by itself after
    Redis goes away."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def messages(self) -> AsyncGenerator[tuple[str, bytes], None]:
        channels = sorted(set(REDIS_CHANNELS.values()))
        delay = 0.2
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*channels)
                delay = 0.2
                async for msg in pubsub.listen():
                    if msg.get("type") == "message":
                        ch = msg["channel"]
                        yield (ch.decode() if isinstance(ch, bytes) else ch), msg["data"]
            except (RedisConnectionError, OSError) as e:
                log.warning("hub: Redis subscription lost (%s); reconnecting in %.1fs", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                await pubsub.aclose()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())
