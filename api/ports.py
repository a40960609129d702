"""What the API takes from the outside world, as small typed ports.

`api.app.create_app` takes them in one `Deps`. A port the deps leave ``None`` is built from
the settings at startup, in ``cleanup_ctx`` (`api.adapters`: Kafka and Redis); the tests
pass in-memory ones (``tests/api/fakes.py``), so that every view runs without a broker.

- `Publisher`: produce records to Kafka (events, commands, readings).
- `Subscriber`: the live events for the WebSocket hub (Redis pub/sub).
- `ReadModels`: views of whole topics (model registry, training jobs, anomaly log,
  maintenance windows), each a `LogModel` that says when it has caught up.
- `History`: a machine's readings and hourly records of a period, read back from Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from detectors.registry import Anomalies, Jobs, Maintenance, Registry
from schemas.energy import EnergyHourly
from schemas.readings import Reading


class Publisher(Protocol):
    """Produce records to Kafka. An outage raises (`aiokafka.errors.KafkaError`,
    `OSError` or `TimeoutError`): views answer it with 503 (`api.errors.unavailable_on_outage`)."""

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Send one record and wait for the broker's acknowledgement."""

    async def send(self, topic: str, key: bytes, value: bytes,
                   timestamp_ms: int) -> asyncio.Future[Any]:
        """Queue one record; the future completes when the broker acknowledges it."""

    async def check_leaders(self, topic: str) -> None:
        """Raise `aiokafka.errors.KafkaConnectionError` unless every leader of the topic's
        partitions accepts a connection now (so that a batch is not half written)."""

    async def reachable(self, topic: str) -> bool:
        """Whether Kafka answers about ``topic`` now (for /health)."""


class Subscriber(Protocol):
    """The live events for the WebSocket hub: ``(channel, payload)`` pairs."""

    def messages(self) -> AsyncGenerator[tuple[str, bytes], None]:
        """Subscribe; yield every message from then on. It may raise or end: the hub
        listener subscribes again."""

    async def ping(self) -> bool:
        """Whether the event source (Redis) answers now (for /health)."""


class LogModel(Protocol):
    """A view of a whole topic, folded in order."""

    #: Set once the view has caught up with the topic's end at its start.
    ready: asyncio.Event

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        """Wait until ``predicate()`` is truthy after some fold and return it;
        `TimeoutError` after ``timeout`` seconds."""


class RegistryModel(LogModel, Protocol):
    """The model registry, from ``enms.models``."""

    registry: Registry


class JobsModel(LogModel, Protocol):
    """Training jobs, from ``enms.training``."""

    jobs: Jobs


class AnomaliesModel(LogModel, Protocol):
    """The anomaly log, from ``enms.anomalies``."""

    anomalies: Anomalies


class MaintenanceModel(LogModel, Protocol):
    """Maintenance windows, from ``enms.maintenance``."""

    maintenance: Maintenance


@dataclass
class ReadModels:
    """The views the REST API reads; one left ``None`` is one this process does not have:
    the views that need it answer 503."""

    registry: RegistryModel | None = None
    jobs: JobsModel | None = None
    anomalies: AnomaliesModel | None = None
    maintenance: MaintenanceModel | None = None


class History(Protocol):
    """A machine's history, read back by event time."""

    async def readings(self, machine_id: str, start: datetime,
                       end: datetime) -> Sequence[Reading]:
        """Readings with ``start <= timestamp < end``, in time order."""

    async def hourly(self, machine_id: str, start: datetime,
                     end: datetime) -> Sequence[EnergyHourly]:
        """Hourly records with ``start <= hour_start < end``, in time order."""


@dataclass
class Deps:
    """The ports of one application. ``None``: built from the settings at startup (the
    Kafka producer, Redis pub/sub and the Kafka-to-Redis bridge that feeds it, views of
    the topics, history from Kafka). The publisher is set once Kafka first answers: until
    then the views that publish answer 503."""

    publisher: Publisher | None = None
    subscriber: Subscriber | None = None
    read_models: ReadModels | None = None
    history: History | None = None
