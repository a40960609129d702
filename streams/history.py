"""Read history back from Kafka by event time: the training data of a machine."""

from __future__ import annotations

import asyncio
from datetime import datetime

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.energy import EnergyHourly
from streams import topics
from streams.settings import Settings

_hourly = msgspec.json.Decoder(EnergyHourly)


async def load_hourly(settings: Settings, machine_id: str, start: datetime | None = None,
                      end: datetime | None = None) -> list[EnergyHourly]:
    """Hourly records of one machine with ``start <= hour_start < end``, in time order.

    ``None`` leaves that side open.

    Seeks each partition to the first record written at or after ``start`` (by the record
    timestamp, which the worker sets to the hour's end) and reads to the current end. A
    record replayed twice (at-least-once delivery) is kept once, the last one.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topics.ENERGY_HOURLY)
        if not parts:
            await consumer._client.force_metadata_update()  # noqa: SLF001
            parts = consumer.partitions_for_topic(topics.ENERGY_HOURLY) or set()
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
