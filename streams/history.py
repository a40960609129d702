"""Read history back from Kafka by event time: the training data of a machine."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime, timedelta

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
    try:
        await consumer.start()
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
    reading's time; the broker's time index gives the first record stamped at or after it),
    through the readings of the period, until a valid reading (of any machine there) is
    dated more than ``max_lateness_s`` past ``end`` (and not in the future now), or to the
    partition's end. The stop is decided on the readings' own timestamps, not on record
    times, and only once the period has been reached: a partition is in time order only
    roughly (late readings, back-filled history), and one record stamped 9000-01-01 must not
    cut every later replay short. A period written twice at different times (a live run and
    a later back-fill) is read up to the end of its first stretch. Records the worker refuses
    (invalid, a key that is not their machine, implausible but for the clock check) are
    skipped: it dead-lettered them; of several records with one timestamp the first is kept,
    as the worker keeps it.
    """
    consumer, parts = await _reader(settings, topics.READINGS)
    try:
        if not parts:
            return []
        key = machine_id.encode()
        limits = settings.limits()
        horizon = end + timedelta(seconds=settings.max_lateness_s)
        latest = datetime.now(UTC) + timedelta(seconds=settings.max_future_s)
        opening = start - timedelta(seconds=settings.max_lateness_s)
        inside = False  # whether the partition has reached the period yet
        tp = TopicPartition(topics.READINGS, partition_of(key, sorted(parts)))
        consumer.assign([tp])
        last = (await consumer.end_offsets([tp]))[tp]
        found = (await consumer.offsets_for_times({tp: int(start.timestamp() * 1000)}))[tp]
        if found is None:
            return []
        consumer.seek(tp, found.offset)
        out: dict[datetime, Reading] = {}
        previous: datetime | None = None
        while await consumer.position(tp) < last:
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=10000)
            for rec in batch.get(tp, []):
                if rec.offset >= last:
                    break
                try:
                    r = decode_reading(rec.value, max_bytes=settings.max_record_bytes)
                except InvalidRecord:
                    continue
                if opening <= r.timestamp < horizon:
                    inside = True
                elif inside and horizon <= r.timestamp <= latest:  # (not: dated in the future)
                    return [out[t] for t in sorted(out)]
                if rec.key != key or r.machine_id != machine_id:
                    continue
                try:
                    check_plausible(r, None, limits, since=previous)
                except InvalidRecord:
                    continue
                previous = r.timestamp if previous is None else max(previous, r.timestamp)
                if start <= r.timestamp < end:
                    out.setdefault(r.timestamp, r)  # the first, as the worker keeps it
        return [out[t] for t in sorted(out)]
    finally:
        await consumer.stop()
