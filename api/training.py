"""Shared by the baseline and model-performance views: views, commands, parameters."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import msgspec
from aiohttp import web
from aiokafka import AIOKafkaProducer

from api.errors import not_found, unavailable, unprocessable
from api.keys import CONN, SETTINGS
from detectors.registry import Job, Jobs, Registry
from schemas.events import TrainCommand, encode
from schemas.machines import Machine, machine_by_id
from streams.topics import COMMANDS
from streams.views import LogView

V = TypeVar("V", bound=LogView)
MODEL_TYPES = ("baseline",)
TRIGGER_TYPES = ("manual", "scheduled", "drift")


def kafka_producer(request: web.Request) -> AIOKafkaProducer:
    """The API's Kafka producer; 503 while it is not connected."""
    producer = request.app[CONN].producer
    if producer is None:
        raise unavailable("Kafka producer not available yet")
    return producer


async def publish(request: web.Request, topic: str, key: str, event: msgspec.Struct) -> None:
    """Send one event as JSON and wait for the broker's ack (503 without a producer)."""
    await kafka_producer(request).send_and_wait(topic, key=key.encode(), value=encode(event))


async def _caught_up(view: V | None, what: str) -> V:
    """The view once it has caught up with its topic; 503 if it cannot within 30 s."""
    if view is None:
        raise unavailable(f"{what} not available yet")
    try:
        await asyncio.wait_for(view.ready.wait(), 30)
    except TimeoutError as e:
        raise unavailable(f"{what} not available yet") from e
    return view


async def registry(request: web.Request) -> Registry:
    """The model registry view, once it has caught up with the log."""
    return (await _caught_up(request.app[CONN].registry, "model registry")).registry


async def jobs(request: web.Request) -> Jobs:
    """The training jobs view, once caught up."""
    return (await _caught_up(request.app[CONN].jobs, "training jobs view")).jobs


def machine_param(value: object, where: str = "query") -> Machine:
    """A known machine from a request parameter: 422 when missing or not text, 404 when
    unknown."""
    if value is None or value == "":
        raise unprocessable("machine_id", "field required", (where,))
    if not isinstance(value, str):
        raise unprocessable("machine_id", "must be text", (where,))
    m = machine_by_id(value)
    if m is None:
        raise not_found(f"machine {value[:80]} not found")
    return m


def choice(value: str | None, field: str, allowed: tuple[str, ...], default: str) -> str:
    """A parameter from a fixed set (422 naming the allowed values)."""
    v = value or default
    if v not in allowed:
        raise unprocessable(field, f"must be one of {', '.join(allowed)}; got {v!r}", ("query",))
    return v


#: Times a request may name: nothing of this system is older, and past 2100 is a typo.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: Longest free text (notes, reasons) a request may carry.
MAX_TEXT = 1000


def time_param(value: object, field: str, where: str = "query") -> datetime | None:
    """ISO 8601 time from 2000 to 2100; naive means UTC; 422 when malformed or outside."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise unprocessable(field, "must be an ISO 8601 time as text", (where,))
    try:
        t = datetime.fromisoformat(value)
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        inside = EARLIEST <= t < LATEST
        offset = t.utcoffset()
    except (ValueError, OverflowError) as e:
        raise unprocessable(field, f"not an ISO 8601 time: {value[:40]!r}", (where,)) from e
    if offset is not None and offset.total_seconds() % 60:
        # RFC 3339 offsets are whole minutes; msgspec would drop the seconds when encoding.
        raise unprocessable(field, "a UTC offset in whole minutes, e.g. +01:00", (where,))
    if not inside:
        raise unprocessable(field, f"must lie between {EARLIEST.date()} and {LATEST.date()}",
                            (where,))
    return t


def window(start: datetime, end: datetime, longest: timedelta, field: str = "end",
           where: str = "query") -> None:
    """422 unless ``start < end`` and the window lasts at most ``longest``."""
    if end <= start:
        raise unprocessable(field, "must be after the start", (where,))
    if end - start > longest:
        raise unprocessable(field, f"a window may last at most {longest.days} days", (where,))


def text_param(value: object, field: str, where: str = "query", default: str = "") -> str:
    """Free text of at most `MAX_TEXT` characters (422 otherwise)."""
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise unprocessable(field, f"must be text of at most {MAX_TEXT} characters", (where,))
    return value


def pending(request: web.Request) -> dict[tuple[str, str], tuple[str, datetime]]:
    """Jobs this process queued that the log has not shown started yet."""
    return request.app[CONN].pending


def running_job(request: web.Request, js: Jobs, machine_id: str, model_type: str) -> str | None:
    """Id of a job of this machine and type that is queued or running, if any."""
    job: Job | None = js.running(machine_id, model_type)
    if job is not None:
        return job.training_job_id
    queued = pending(request).get((machine_id, model_type))
    if queued is None:
        return None
    job_id, at = queued
    known = js.jobs.get(job_id)
    if (known is not None and known.terminal) or datetime.now(UTC) - at > timedelta(minutes=10):
        del pending(request)[(machine_id, model_type)]
        return None
    return job_id


async def queue_training(request: web.Request, cmd_fields: dict[str, object]) -> TrainCommand:
    """Put a training command on ``enms.commands``; remember it as pending."""
    producer = kafka_producer(request)
    settings = request.app[SETTINGS]
    cmd = TrainCommand(training_job_id=str(uuid.uuid4()), requested_at=datetime.now(UTC),
                       window_days=settings.retrain_window_days, **cmd_fields)  # type: ignore[arg-type]
    await producer.send_and_wait(COMMANDS, key=cmd.machine_id.encode(), value=encode(cmd))
    pending(request)[(cmd.machine_id, cmd.model_type)] = (cmd.training_job_id, cmd.requested_at)
    return cmd
