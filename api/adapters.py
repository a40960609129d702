"""The real ports (`api.ports`) over Kafka; `api.bridge.RedisSubscriber` is the Redis one.
`api.app` builds them at startup."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from schemas.energy import EnergyHourly
from schemas.readings import Reading
from streams.history import load_hourly, load_readings
from streams.settings import Settings


class KafkaPublisher:
    """`api.ports.Publisher` over a started aiokafka producer."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(topic, key=key, value=value)

    async def send(self, topic: str, key: bytes, value: bytes,
                   timestamp_ms: int) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = await self.producer.send(
            topic, key=key, value=value, timestamp_ms=timestamp_ms)
        return future

    async def check_leaders(self, topic: str) -> None:
        client = self.producer.client
        partitions = await self.producer.partitions_for(topic)
        leaders = {client.cluster.leader_for_partition(TopicPartition(topic, p))
                   for p in partitions}
        for node in leaders:
            if node is None or node < 0 or not await client.ready(node):
                msg = f"broker {node} (leader of a partition of {topic}) is not reachable"
                raise KafkaConnectionError(msg)

    async def reachable(self, topic: str) -> bool:
        return bool(await self.producer.partitions_for(topic))


class KafkaHistory:
    """`api.ports.History` from the readings and hourly topics (`streams.history`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def readings(self, machine_id: str, start: datetime,
                       end: datetime) -> Sequence[Reading]:
        return await load_readings(self.settings, machine_id, start, end)

    async def hourly(self, machine_id: str, start: datetime,
                     end: datetime) -> Sequence[EnergyHourly]:
        return await load_hourly(self.settings, machine_id, start, end)
