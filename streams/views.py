"""Views of whole topics: read every partition from the beginning, fold, keep following.

No consumer group: each process keeps its own complete view (the worker and every API
process). `ready` is set once the view has caught up with the end offsets seen at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from detectors.registry import Anomalies, Jobs, Maintenance, Registry
from schemas.events import decode_event, decode_maintenance, decode_registry_event
from streams import topics
from streams.settings import Settings

log = logging.getLogger(__name__)


class LogView:
    """Fold a topic into state with ``apply(key, value)``; follow it until stopped."""

    def __init__(self, settings: Settings, topic: str,
                 apply: Callable[[bytes | None, bytes], Any]) -> None:
        self.settings = settings
        self.topic = topic
        self._apply = apply
        self.ready = asyncio.Event()
        self.applied = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Connect, catch up in the background."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        """Wait until ``predicate()`` is truthy after some fold; TimeoutError otherwise."""
        async def loop() -> Any:
            async with self._changed:
                while not (result := predicate()):
                    await self._changed.wait()
                return result
        return await asyncio.wait_for(loop(), timeout)

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("view of %s failed; restarting in 2 s", self.topic)
                await asyncio.sleep(2.0)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms, metadata_max_age_ms=5000)
        await consumer.start()
        try:
            parts: set[int] | None = None
            for _ in range(50):
                parts = consumer.partitions_for_topic(self.topic)
                if parts:
                    break
                await consumer._client.force_metadata_update()  # noqa: SLF001 - new topic
                await asyncio.sleep(0.2)
            if not parts:
                msg = f"topic {self.topic} not found"
                raise RuntimeError(msg)
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            log.info("view of %s: catching up to offsets %s", self.topic,
                     {tp.partition: end[tp] for tp in tps})
            if all(end[tp] == 0 for tp in tps):
                self.ready.set()
            while True:
                batch = await consumer.getmany(timeout_ms=200, max_records=2000)
                async with self._changed:
                    for records in batch.values():
                        for rec in records:
                            try:
                                self._apply(rec.key, rec.value)
                                self.applied += 1
                            except Exception:
                                log.exception("view of %s: cannot apply %s[%s]@%s", self.topic,
                                              rec.topic, rec.partition, rec.offset)
                    self._changed.notify_all()
                if not self.ready.is_set() and all(
                        [await consumer.position(tp) >= end[tp] for tp in tps]):
                    log.info("view of %s: ready (%d records)", self.topic, self.applied)
                    self.ready.set()
        finally:
            await consumer.stop()


class RegistryView(LogView):
    """The model registry, from ``enms.models``."""

    def __init__(self, settings: Settings) -> None:
        self.registry = Registry()
        super().__init__(settings, topics.MODELS,
                         lambda _k, v: self.registry.apply(decode_registry_event(v)))


class JobsView(LogView):
    """Training jobs, from ``enms.training``."""

    def __init__(self, settings: Settings) -> None:
        self.jobs = Jobs()
        super().__init__(settings, topics.TRAINING, lambda _k, v: self.jobs.apply(decode_event(v)))


class AnomaliesView(LogView):
    """Anomalies and their resolutions, from ``enms.anomalies``."""

    def __init__(self, settings: Settings) -> None:
        self.anomalies = Anomalies()
        super().__init__(settings, topics.ANOMALIES,
                         lambda _k, v: self.anomalies.apply(decode_event(v)))


class MaintenanceView(LogView):
    """Maintenance windows, from ``enms.maintenance``."""

    def __init__(self, settings: Settings) -> None:
        self.maintenance = Maintenance()
        super().__init__(settings, topics.MAINTENANCE,
                         lambda _k, v: self.maintenance.apply(decode_maintenance(v)))
