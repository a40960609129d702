"""Read history back from Kafka by event time: the training data of a machine."""

from __future__ import annotations

import asyncio
from datetime import datetime

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from schemas.energy import EnergyHourly
from schemas.readings import Reading
from streams import topics
from streams.settings import Settings

_hourly = msgspec.json.Decoder(EnergyHourly)


async def _reader(settings: Settings, topic: str) -> tuple[AIOKafkaConsumer, set[int]]:
    """A started consumer with no group, and the topic's partitions (empty if none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - a new topic
            parts = consumer.partitions_for_topic(topic) or set()
    except BaseException:
        await consumer.stop()
        raise
    return consumer, parts


async def load_hourly(settings: Settings, machine_id: str, start: datetime | None = None,
                      end: datetime | None = None) -> list[EnergyHourly]:
    """Hourly records of one machine with ``start <= hour_start < end``, in time order.

    ``None`` leaves that side open.

    Seeks each partition to the first record written at or after ``start`` (by the record
    timestamp, which the worker sets to the hour's end) and reads to the current end. A
    record replayed twice (at-least-once delivery) is kept once, the last one.
    """
    consumer, parts = await _reader(settings, topics.ENERGY_HOURLY)
    try:
        tps = [TopicPartition(topics.ENERGY_HOURLY, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        end_offsets = await consumer.end_offsets(tps)
        since = 0 if start is None else int(start.timestamp() * 1000)
        found = await consumer.offsets_for_times({tp: since for tp in tps})
        wanted = []
        for tp in tps:
            ot = found.get(tp)
            if ot is None:
                continue  # nothing at or after start on this partition
            consumer.seek(tp, ot.offset)
            if ot.offset < end_offsets[tp]:
                wanted.append(tp)
        key = machine_id.encode()
        rows: dict[datetime, EnergyHourly] = {}
        while wanted:
            batch = await consumer.getmany(*wanted, timeout_ms=500, max_records=5000)
            for recs in batch.values():
                for rec in recs:
                    if rec.key != key:
                        continue
                    row = _hourly.decode(rec.value)
                    if (start is None or start <= row.hour_start) and (
                            end is None or row.hour_start < end):
                        rows[row.hour_start] = row
            wanted = [tp for tp in wanted if await consumer.position(tp) < end_offsets[tp]]
            await asyncio.sleep(0)
        return [rows[k] for k in sorted(rows)]
    finally:
        await consumer.stop()


_reading = msgspec.json.Decoder(Reading)


def partition_of(key: bytes, partitions: list[int]) -> int:
    """The partition Kafka's default partitioner (murmur2) gives a key, as producers use."""
    return int(DefaultPartitioner()(key, partitions, partitions))


async def load_readings(settings: Settings, machine_id: str, start: datetime,
                        end: datetime) -> list[Reading]:
    """One machine's readings with ``start <= timestamp < end`` from ``enms.readings``.

    Reads only the machine's partition, from the offset of ``start`` (record time is the
    reading's time) up to the first record at or after ``end``. Invalid records are skipped
    (the worker already dead-lettered them); duplicates of one timestamp are kept once.
    """
    consumer, parts = await _reader(settings, topics.READINGS)
    try:
        if not parts:
            return []
        key = machine_id.encode()
        tp = TopicPartition(topics.READINGS, partition_of(key, sorted(parts)))
        consumer.assign([tp])
        last = (await consumer.end_offsets([tp]))[tp]
        found = (await consumer.offsets_for_times({tp: int(start.timestamp() * 1000)}))[tp]
        if found is None:
            return []
        stop = (await consumer.offsets_for_times({tp: int(end.timestamp() * 1000)}))[tp]
        stop_at = last if stop is None else stop.offset
        consumer.seek(tp, found.offset)
        out: dict[datetime, Reading] = {}
        while await consumer.position(tp) < stop_at:
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=10000)
            for rec in batch.get(tp, []):
                if rec.offset >= stop_at:
                    break
                if rec.key != key:
                    continue
                try:
                    r = _reading.decode(rec.value)
                except msgspec.MsgspecError:
                    continue
                if start <= r.timestamp < end:
                    out[r.timestamp] = r
        return [out[t] for t in sorted(out)]
    finally:
        await consumer.stop()
