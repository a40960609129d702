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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from streams.settings import Settings
from streams.topics import OUTPUT_TOPICS, REDIS_CHANNELS

log = logging.getLogger(__name__)

Subscribe = Callable[[], AsyncIterator[tuple[str, bytes]]]


@dataclass
class BridgeStats:
    """What the bridge did, for /health and the tests."""

    forwarded: int = 0
    skipped: int = 0
    redis_errors: int = 0
    assigned: list[str] = field(default_factory=list)
    running: bool = False


def channel_of(payload: bytes) -> str | None:
    """The Redis channel of an event payload, or None if it is not a known event.

    Examples
    --------
    >>> channel_of(b'{"event_type": "anomaly_detected", "event_id": "1"}')
    'anomaly.detected'
    >>> channel_of(b'not json') is None
    True
    """
    try:
        return REDIS_CHANNELS.get(orjson.loads(payload).get("event_type"))
    except (orjson.JSONDecodeError, AttributeError):
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
            await _publish_until_done(redis, batches, stats)
            await consumer.commit()
    finally:
        stats.running = False
        await consumer.stop()


async def _publish_until_done(redis: aioredis.Redis, batches: dict, stats: BridgeStats) -> None:
    """Publish a fetched batch; while Redis is down, retry with backoff (nothing is dropped)."""
    delay = 0.2
    while True:
        try:
            async with redis.pipeline(transaction=False) as pipe:
                n = 0
                for records in batches.values():
                    for rec in records:
                        channel = channel_of(rec.value)
                        if channel is None:
                            stats.skipped += 1
                            log.warning("bridge: not an event at %s[%s]@%s", rec.topic,
                                        rec.partition, rec.offset)
                            continue
                        pipe.publish(channel, rec.value)
                        n += 1
                await pipe.execute()
            stats.forwarded += n
            return
        except (RedisError, OSError) as e:
            stats.redis_errors += 1
            log.warning("bridge: Redis publish failed (%s); retrying in %.1fs", e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def redis_subscribe(redis: aioredis.Redis) -> Subscribe:
    """A `Subscribe` over the six channels that reconnects after Redis goes away."""
    channels = sorted(set(REDIS_CHANNELS.values()))

    async def gen() -> AsyncIterator[tuple[str, bytes]]:
        delay = 0.2
        while True:
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
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

    return gen
