"""The Kafka fuzzer: generated bad records and good readings on ``enms.readings``, then a
count of what the worker made of them.

Every bad record must come back on ``enms.readings.dlq`` (found by its source partition and
offset), every good reading must be counted in a ``metric_updated``, and the worker must not
log a crashed agent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from fuzz.records import KINDS, closing_readings, span, stream
from schemas.machines import Machine
from schemas.readings import encode_reading
from streams import topics
from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class KafkaFuzz:
    """What was sent and what came back."""

    bad_sent: int = 0
    good_sent: int = 0
    bad_by_kind: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    good_scored: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Places = set[tuple[int, int]]  # (partition, offset) of records on the readings topic


async def _produce(bootstrap: str, records: Any, closers: list[Any]) -> tuple[Places, Counter[str], int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                max_request_size=topics.READINGS_MAX_MESSAGE_BYTES)
    await producer.start()
    bad_at: Places = set()
    kinds: Counter[str] = Counter()
    good = 0
    try:
        pending: list[tuple[str, asyncio.Future[Any]]] = []

        async def drain() -> None:
            for kind, fut in pending:
                md = await fut
                if kind in KINDS:
                    bad_at.add((md.partition, md.offset))
            pending.clear()

        for rec in records:
            fut = await producer.send(topics.READINGS, key=rec.key, value=rec.value,
                                      timestamp_ms=int(rec.at.timestamp() * 1000))
            pending.append((rec.kind, fut))
            if rec.kind == "good":
                good += 1
            else:
                kinds[rec.kind] += 1
            if len(pending) >= 1000:
                await drain()
        for r in closers:
            pending.append(("closer", await producer.send(
                topics.READINGS, key=r.machine_id.encode(), value=encode_reading(r),
                timestamp_ms=int(r.timestamp.timestamp() * 1000))))
        await drain()
    finally:
        await producer.stop()
    return bad_at, kinds, good


async def _follow(bootstrap: str, topic: str, done: Any, timeout: float) -> None:
    """Read ``topic`` from the beginning, passing each decoded record to ``done`` until it
    returns True; TimeoutError past ``timeout``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        async with asyncio.timeout(timeout):
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for recs in batch.values():
                    for rec in recs:
                        if done(orjson.loads(rec.value)):
                            return
    finally:
        await consumer.stop()


async def run(settings: Settings, *, seed: int, bad: int, good: int, machines: list[Machine],
              start: datetime, timeout: float = 120.0) -> KafkaFuzz:
    """Produce ``bad`` bad records and ``good`` good readings (of ``machines``, from
    ``start``) to a running worker's readings topic; wait for the dead letters and the
    metrics (at most ``timeout`` s each); return the counts."""
    t0 = time.monotonic()
    closing_at = span(start, machines, good) + timedelta(hours=1)
    records = stream(seed=seed, machines=machines, start=start, bad=bad, good=good,
                     now=datetime.now(start.tzinfo), limits=settings.limits(),
                     max_bytes=settings.max_record_bytes)
    bad_at, kinds, good_sent = await _produce(settings.kafka_bootstrap, records,
                                              closing_readings(machines, closing_at))
    result = KafkaFuzz(bad_sent=sum(kinds.values()), good_sent=good_sent,
                       bad_by_kind=dict(kinds))
    log.info("Kafka fuzzer: %d records produced in %.1f s", result.bad_sent + good_sent,
             time.monotonic() - t0)
    found: Places = set()

    def dead(d: dict[str, Any]) -> bool:
        place = (d.get("source_partition"), d.get("source_offset"))
        if d.get("source_topic") == topics.READINGS and place in bad_at:
            found.add(place)
        return len(found) == len(bad_at)

    ids = {m.id for m in machines}
    counted: dict[tuple[str, str], int] = {}

    def scored(e: dict[str, Any]) -> bool:
        if e.get("event_type") == "metric_updated" and e.get("machine_id") in ids:
            ws = datetime.fromisoformat(e["window_start"])
            if start <= ws < closing_at:
                counted[(e["machine_id"], e["window_start"])] = e["readings"]
        return sum(counted.values()) >= good_sent

    for topic, done in ((topics.READINGS_DLQ, dead), (topics.METRICS, scored)):
        try:
            await _follow(settings.kafka_bootstrap, topic, done, timeout)
        except TimeoutError:
            log.warning("Kafka fuzzer: gave up waiting on %s after %.0f s", topic, timeout)
        log.info("Kafka fuzzer: %s read at %.1f s", topic, time.monotonic() - t0)
    result.dead_lettered = len(found)
    result.good_scored = sum(counted.values())
    result.seconds = round(time.monotonic() - t0, 1)
    return result
