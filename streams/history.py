"""Read history back from Kafka by event time: the training data of a machine."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import datetime

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from schemas.energy import EnergyHourly
from schemas.plausibility import check_plausible
from schemas.readings import InvalidRecord, Reading, decode_reading, decode_record
from streams import topics
from streams.settings import Settings

log = logging.getLogger(__name__)
_hourly = msgspec.json.Decoder(EnergyHourly)


async def _reader(settings: Settings, topic: str) -> tuple[AIOKafkaConsumer, set[int]]:
    """A started consumer with no group, and the topic's partitions (empty if none)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest",
        # The largest record the readings topic takes must not stall a partition.
        max_partition_fetch_bytes=topics.READINGS_MAX_MESSAGE_BYTES + 64 * 1024)
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
    record replayed twice (at-least-once delivery) is kept once, the last one. A record that
    is not a valid hour (e.g. ``null`` energy written by an older version from an overflowed
    sum) is skipped and logged: one bad hour must not make every retrain fail.
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
                    try:
                        row = decode_record(_hourly, rec.value, "an hourly record")
                    except InvalidRecord as e:
                        log.warning("skipped %s[%s]@%s: %s (%s)", rec.topic, rec.partition,
                                    rec.offset, e.reason, e.field)
                        continue
                    if not all(map(math.isfinite, (row.energy_kwh, row.mean_power_kw))):
                        continue
                    if (start is None or start <= row.hour_start) and (
                            end is None or row.hour_start < end):
                        rows[row.hour_start] = row
            wanted = [tp for tp in wanted if await consumer.position(tp) < end_offsets[tp]]
            await asyncio.sleep(0)
        return [rows[k] for k in sorted(rows)]
    finally:
        await consumer.stop()




def partition_of(key: bytes, partitions: list[int]) -> int:
    """The partition Kafka's default partitioner (murmur2) gives a key, as producers use."""
    return int(DefaultPartitioner()(key, partitions, partitions))


async def load_readings(settings: Settings, machine_id: str, start: datetime,
                        end: datetime) -> list[Reading]:
    """One machine's readings with ``start <= timestamp < end`` from ``enms.readings``.

    Reads only the machine's partition, from the offset of ``start`` (record time is the
    reading's time) up to the first record at or after ``end``. Records the worker refuses
    (invalid, or implausible but for the clock check) are skipped: it dead-lettered them;
    of several records with one timestamp the first is kept, as the worker keeps it.
    """
    consumer, parts = await _reader(settings, topics.READINGS)
    try:
        if not parts:
            return []
        key = machine_id.encode()
        limits = settings.limits()
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
                    r = decode_reading(rec.value, max_bytes=settings.max_record_bytes)
                    check_plausible(r, None, limits)
                except InvalidRecord:
                    continue
                if start <= r.timestamp < end:
                    out.setdefault(r.timestamp, r)  # the first, as the worker keeps it
        return [out[t] for t in sorted(out)]
    finally:
        await consumer.stop()
