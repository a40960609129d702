"""In-memory ports for the API tests (`api.ports`), written by hand in the manner of
cosmicpython's ``FakeRepository``: each keeps what it was given and answers from it.

`Fakes` bundles one of each, wired as in production: what the publisher publishes is folded
into the read model of its topic (as this process's own view would, from Kafka), and a
training command is answered by a stand-in worker (`FakeTrainer`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiokafka.errors import KafkaConnectionError

from api.ports import Deps, ReadModels
from detectors.registry import Anomalies, Jobs, Maintenance, Registry
from schemas.energy import BaselineMetrics, BaselineModel, EnergyHourly
from schemas.events import (
    AnomalyDetected,
    Event,
    MaintenanceWindow,
    ModelActivated,
    ModelRolledBack,
    ModelTrained,
    TrainCommand,
    TrainingCompleted,
    TrainingFailed,
    TrainingStarted,
    decode_command,
    decode_event,
    decode_maintenance,
    decode_registry_event,
    encode,
)
from schemas.machines import machine_by_id
from schemas.readings import Reading
from streams.topics import ANOMALIES, COMMANDS, MAINTENANCE, MODELS, READINGS, TRAINING

#: How each topic's records decode, as the worker and the views decode them.
DECODERS: dict[str, Callable[[bytes], Any]] = {
    MODELS: decode_registry_event, TRAINING: decode_event, ANOMALIES: decode_event,
    MAINTENANCE: decode_maintenance, COMMANDS: decode_command,
    READINGS: lambda v: msgspec.json.decode(v, type=Reading)}


# -- read models -----------------------------------------------------------------------------


class FakeLog:
    """A read model in memory, caught up from the start (`ready` set) unless told not to.
    `fold` applies a record as the view of its topic would; `add` applies events directly,
    to seed it."""

    topic = ""

    def __init__(self, *, ready: bool = True) -> None:
        self.ready = asyncio.Event()
        if ready:
            self.ready.set()
        self._changed = asyncio.Condition()

    def apply(self, value: bytes) -> None:
        raise NotImplementedError

    async def fold(self, value: bytes) -> None:
        async with self._changed:
            self.apply(value)
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        async def loop() -> Any:
            async with self._changed:
                while not (result := predicate()):
                    await self._changed.wait()
                return result
        return await asyncio.wait_for(loop(), timeout)


class FakeRegistryView(FakeLog):
    topic = MODELS

    def __init__(self, *, ready: bool = True) -> None:
        super().__init__(ready=ready)
        self.registry = Registry()

    def add(self, *events: ModelTrained | ModelActivated | ModelRolledBack) -> FakeRegistryView:
        for e in events:
            self.registry.apply(e)
        return self

    def apply(self, value: bytes) -> None:
        self.registry.apply(decode_registry_event(value))


class FakeJobsView(FakeLog):
    topic = TRAINING

    def __init__(self, *, ready: bool = True) -> None:
        super().__init__(ready=ready)
        self.jobs = Jobs()

    def add(self, *events: Event) -> FakeJobsView:
        for e in events:
            self.jobs.apply(e)
        return self

    def apply(self, value: bytes) -> None:
        self.jobs.apply(decode_event(value))


class FakeAnomaliesView(FakeLog):
    topic = ANOMALIES

    def __init__(self, *, ready: bool = True) -> None:
        super().__init__(ready=ready)
        self.anomalies = Anomalies()

    def add(self, *events: Event) -> FakeAnomaliesView:
        for e in events:
            self.anomalies.apply(e)
        return self

    def apply(self, value: bytes) -> None:
        self.anomalies.apply(decode_event(value))


class FakeMaintenanceView(FakeLog):
    topic = MAINTENANCE

    def __init__(self, *, ready: bool = True) -> None:
        super().__init__(ready=ready)
        self.maintenance = Maintenance()

    def add(self, *events: MaintenanceWindow) -> FakeMaintenanceView:
        for e in events:
            self.maintenance.apply(e)
        return self

    def apply(self, value: bytes) -> None:
        self.maintenance.apply(decode_maintenance(value))


# -- publisher -------------------------------------------------------------------------------


Record = tuple[str, bytes, bytes]  # topic, key, value


class FakePublisher:
    """Records what would go to Kafka, and folds each published record into the read models
    of its topic. A ``worker`` answers records too (a training command with its events),
    folded into the views but not recorded: `sent` is what the API sent.

    ``acks`` limits how many `send`s are ever acknowledged (None: all); the rest stay
    pending, as with a broker that stopped answering. ``leaders_up`` False: the readings
    topic's leaders refuse connections. ``failure``: what `publish` raises (e.g.
    ``KafkaTimeoutError()``, an ack that never came). ``up``: what /health is told.
    """

    def __init__(self, *views: FakeLog,
                 worker: Callable[[str, bytes, bytes], list[Record]] | None = None) -> None:
        self.sent: list[Record] = []
        self.views = list(views)
        self.worker = worker
        self.acks: int | None = None
        self.leaders_up = True
        self.failure: BaseException | None = None
        self.up = True

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.append((topic, key, value))
        await self._fold(topic, key, value)

    async def _fold(self, topic: str, key: bytes, value: bytes) -> None:
        for view in self.views:
            if view.topic == topic:
                await view.fold(value)
        for out in (self.worker(topic, key, value) if self.worker else []):
            await self._fold(*out)

    async def send(self, topic: str, key: bytes, value: bytes,
                   timestamp_ms: int) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value))
        f: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.acks is None or len(self.sent) <= self.acks:
            f.set_result(None)
        return f

    async def check_leaders(self, topic: str) -> None:
        if not self.leaders_up:
            msg = f"broker 1 (leader of a partition of {topic}) is not reachable"
            raise KafkaConnectionError(msg)

    async def reachable(self, topic: str) -> bool:
        return self.up

    def records(self, topic: str) -> list[Any]:
        """What was sent to ``topic``, decoded."""
        return [DECODERS[topic](v) for t, _k, v in self.sent if t == topic]

    def keys(self, topic: str) -> list[bytes]:
        return [k for t, k, _v in self.sent if t == topic]


@dataclass
class FakeTrainer:
    """The worker's side of a training command: ``completed`` trains an accepted model
    (training_started, model_trained, training_completed), ``failed`` reports an error,
    ``silent`` never answers (a worker that is down)."""

    registry: FakeRegistryView
    outcome: Literal["completed", "failed", "silent"] = "completed"
    error: str = "not enough data: 3 hours, at least 168 needed"
    commands: list[TrainCommand] = field(default_factory=list)

    def __call__(self, topic: str, key: bytes, value: bytes) -> list[Record]:
        if topic != COMMANDS:
            return []
        cmd = decode_command(value)
        self.commands.append(cmd)
        if self.outcome == "silent":
            return []
        now = datetime.now(UTC)
        job: dict[str, Any] = {"occurred_at": now, "machine_id": cmd.machine_id,
                               "model_type": cmd.model_type,
                               "training_job_id": cmd.training_job_id,
                               "job_id": cmd.training_job_id}
        started = TrainingStarted(event_id=f"{cmd.training_job_id}-s",
                                  trigger_type=cmd.trigger_type, **job)
        if self.outcome == "failed":
            return [(TRAINING, key, encode(started)),
                    (TRAINING, key, encode(TrainingFailed(event_id=f"{cmd.training_job_id}-f",
                                                          error=self.error, **job)))]
        version = self.registry.registry.next_version(cmd.machine_id, cmd.model_type)
        model = msgspec.structs.replace(
            baseline_model(cmd.machine_id, version), model_id=f"{cmd.training_job_id}-model",
            training_job_id=cmd.training_job_id)
        trained = ModelTrained(event_id=f"{cmd.training_job_id}-m", occurred_at=now,
                               machine_id=cmd.machine_id, model_type=cmd.model_type,
                               version=version, model=model)
        done = TrainingCompleted(event_id=f"{cmd.training_job_id}-c", version=version,
                                 accepted=True, **job)
        return [(TRAINING, key, encode(started)), (MODELS, key, encode(trained)),
                (TRAINING, key, encode(done))]


# -- subscriber ------------------------------------------------------------------------------


class FakeSubscriber:
    """Live events from a queue: put ``(channel, payload)`` pairs, or an exception for the
    subscription to raise there. ``failure``: raised at every subscription (a Redis that is
    down). ``connected``: what /health is told. ``subscriptions`` counts the subscribes."""

    def __init__(self, *, connected: bool = True, failure: BaseException | None = None) -> None:
        self.queue: asyncio.Queue[tuple[str, bytes] | BaseException] = asyncio.Queue()
        self.connected = connected
        self.failure = failure
        self.subscriptions = 0

    async def messages(self) -> AsyncGenerator[tuple[str, bytes], None]:
        self.subscriptions += 1
        if self.failure is not None:
            raise self.failure
        while True:
            item = await self.queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def ping(self) -> bool:
        return self.connected

    async def put(self, channel: str, payload: bytes) -> None:
        await self.queue.put((channel, payload))


# -- history ---------------------------------------------------------------------------------


class Gated(list[Reading]):
    """Readings whose iteration first waits for ``gate`` (at most ``wait_s``), telling
    ``entered`` it started: shows which thread does the work over them."""

    def __init__(self, readings: Sequence[Reading], entered: threading.Event,
                 gate: threading.Event, wait_s: float = 10.0) -> None:
        super().__init__(readings)
        self.entered, self.gate, self.wait_s = entered, gate, wait_s
        self.threads: list[str] = []

    def __iter__(self) -> Iterator[Reading]:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        self.gate.wait(self.wait_s)
        return super().__iter__()


class FakeHistory:
    """History from lists: what falls in the period asked for, of the machine asked for.
    ``down``: every read raises as with Kafka unreachable. ``gate``: ``(entered, gate)``,
    the readings come `Gated` (see there; kept in ``served``). ``asked`` records the calls."""

    def __init__(self, readings: Sequence[Reading] = (), hourly: Sequence[EnergyHourly] = (),
                 *, down: bool = False) -> None:
        self.stored_readings = list(readings)
        self.stored_hourly = list(hourly)
        self.down = down
        self.gate: tuple[threading.Event, threading.Event] | None = None
        self.served: list[Gated] = []
        self.asked: list[tuple[str, str, datetime, datetime]] = []

    def _check(self, what: str, machine_id: str, start: datetime, end: datetime) -> None:
        self.asked.append((what, machine_id, start, end))
        if self.down:
            msg = "Unable to bootstrap from [('127.0.0.1', 9)]"
            raise KafkaConnectionError(msg)

    async def readings(self, machine_id: str, start: datetime,
                       end: datetime) -> Sequence[Reading]:
        self._check("readings", machine_id, start, end)
        out = [r for r in self.stored_readings
               if r.machine_id == machine_id and start <= r.timestamp < end]
        if self.gate is not None:
            gated = Gated(out, *self.gate)
            self.served.append(gated)
            return gated
        return out

    async def hourly(self, machine_id: str, start: datetime,
                     end: datetime) -> Sequence[EnergyHourly]:
        self._check("hourly", machine_id, start, end)
        return [h for h in self.stored_hourly
                if h.machine_id == machine_id and start <= h.hour_start < end]


class SyntheticHistory(FakeHistory):
    """History of any machine and period, made up on demand: a reading every 5 minutes with
    the power steady but for a spike (x 2.5) in the hour two hours before the period's end,
    and every hour of the period."""

    async def readings(self, machine_id: str, start: datetime,
                       end: datetime) -> Sequence[Reading]:
        self._check("readings", machine_id, start, end)
        return synthetic_readings(machine_id, start, end)

    async def hourly(self, machine_id: str, start: datetime,
                     end: datetime) -> Sequence[EnergyHourly]:
        self._check("hourly", machine_id, start, end)
        return synthetic_hourly(machine_id, start, end)


def synthetic_readings(machine_id: str, start: datetime, end: datetime,
                       spike_at: datetime | None = None) -> list[Reading]:
    """A reading every 5 minutes of the period (at most 20,000), the power steady but for
    a spike in the hour from ``spike_at`` (default: two hours before the end)."""
    m = machine_by_id(machine_id)
    assert m is not None
    out: list[Reading] = []
    t, spike = start, end - timedelta(hours=2) if spike_at is None else spike_at
    while t < end and len(out) < 20_000:
        power = m.rated_power_kw * (0.5 + 0.01 * (len(out) % 5))
        if spike <= t < spike + timedelta(hours=1):
            power *= 2.5
        out.append(Reading(machine_id=m.id, timestamp=t, power_kw=power,
                           energy_kwh=power * m.data_interval_seconds / 3600))
        t += timedelta(minutes=5)
    return out


def synthetic_hourly(machine_id: str, start: datetime, end: datetime) -> list[EnergyHourly]:
    """Every hour of the period (at most 400 days): 10, 11, 12, 10, ... kWh."""
    hours = min(int((end - start) / timedelta(hours=1)), 24 * 400)
    return [EnergyHourly(machine_id=machine_id, hour_start=start + timedelta(hours=i),
                         energy_kwh=10.0 + i % 3, readings=120, coverage=1.0,
                         mean_power_kw=10.0, max_power_kw=12.0, production_count=20.0)
            for i in range(hours)]


# -- records ---------------------------------------------------------------------------------

#: Compressor-1.
M1 = "c0000000-0000-0000-0000-000000000001"


def reading(**over: Any) -> dict[str, Any]:
    """A valid reading of M1 as JSON, with fields replaced by ``over``."""
    r = {"machine_id": M1, "timestamp": "2026-01-05T08:00:00+00:00", "power_kw": 40.0,
         "energy_kwh": 0.011}
    r.update(over)
    return r



def baseline_model(machine_id: str, version: int, *, accepted: bool = True,
                   trained_at: datetime | None = None) -> BaselineModel:
    """A baseline of 5 kWh + 0.2 kWh per unit produced, validated CV(RMSE) 10 + version %."""
    now = datetime.now(UTC).replace(microsecond=0)
    metrics = BaselineMetrics(
        r_squared=0.9, adj_r_squared=0.9, rmse=1.0, mae=0.8, cv_rmse=9.0, nmbe=0.1,
        f_pvalue=0.001, coef_pvalues={"intercept": 0.2, "production": 0.001},
        training_samples=500, validation_samples=100, r_squared_validation=0.85,
        rmse_validation=1.1, mae_validation=0.9, cv_rmse_validation=10.0 + version,
        nmbe_validation=None, data_coverage=0.98)
    return BaselineModel(
        model_id=f"model-v{version}", machine_id=machine_id, version=version, kind="production",
        feature_names=["production"], coefficients={"production": 0.2}, intercept=5.0,
        metrics=metrics, accepted=accepted, reasons=[] if accepted else ["CV(RMSE) too high"],
        training_start=now - timedelta(days=30), training_end=now - timedelta(days=1),
        trained_at=trained_at or now - timedelta(days=version),
        training_job_id=f"job-{version}")


def anomaly_event(event_id: str, machine_id: str, at: datetime, *,
                  severity: Literal["critical", "warning", "normal"] = "critical",
                  value: float = 80.0) -> AnomalyDetected:
    m = machine_by_id(machine_id)
    return AnomalyDetected(
        event_id=event_id, occurred_at=at, machine_id=machine_id,
        machine_name=m.name if m else "?", timestamp=at, metric="power_kw", value=value,
        expected_value=20.0, deviation_percent=300.0, score=0.99, threshold=0.9,
        anomaly_score=9.0, severity=severity, anomaly_type="spike", detector="hst")


# -- all of them -----------------------------------------------------------------------------


@dataclass
class Fakes:
    """One fake of each port, wired together (see the module's docstring)."""

    registry: FakeRegistryView = field(default_factory=FakeRegistryView)
    jobs: FakeJobsView = field(default_factory=FakeJobsView)
    anomalies: FakeAnomaliesView = field(default_factory=FakeAnomaliesView)
    maintenance: FakeMaintenanceView = field(default_factory=FakeMaintenanceView)
    subscriber: FakeSubscriber = field(default_factory=FakeSubscriber)
    history: FakeHistory = field(default_factory=FakeHistory)
    trainer: FakeTrainer = field(init=False)
    publisher: FakePublisher = field(init=False)

    def __post_init__(self) -> None:
        self.trainer = FakeTrainer(self.registry)
        self.publisher = FakePublisher(self.registry, self.jobs, self.anomalies,
                                       self.maintenance, worker=self.trainer)

    def deps(self) -> Deps:
        return Deps(publisher=self.publisher, subscriber=self.subscriber,
                    read_models=ReadModels(registry=self.registry, jobs=self.jobs,
                                           anomalies=self.anomalies,
                                           maintenance=self.maintenance),
                    history=self.history)


def no_kafka_deps(subscriber: FakeSubscriber | None = None) -> Deps:
    """Ports of a process without any view of Kafka: the views that read one answer 503,
    history reads fail as with Kafka unreachable; the publisher records."""
    return Deps(publisher=FakePublisher(), subscriber=subscriber or FakeSubscriber(),
                read_models=ReadModels(), history=FakeHistory(down=True))


#: The aiohttp test client of an app.
Client = TestClient[web.Request, web.Application]
