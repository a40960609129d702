"""What a view takes from its application: the ports (`api.ports`), with a 503 while one is
not available, and the read models once they have caught up with their topics."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import msgspec
from aiohttp import web

from api.errors import unavailable
from api.keys import DEPS
from api.ports import (
    AnomaliesModel,
    History,
    JobsModel,
    LogModel,
    MaintenanceModel,
    Publisher,
    ReadModels,
    RegistryModel,
)
from schemas.events import encode

M = TypeVar("M", bound=LogModel)
#: How long a request waits for a read model to catch up before it answers 503.
CATCH_UP_S = 30.0


def publisher(request: web.Request) -> Publisher:
    """The app's publisher; 503 while it is not connected (Kafka not reachable yet)."""
    p = request.app[DEPS].publisher
    if p is None:
        raise unavailable("Kafka producer not available yet")
    return p


async def publish(request: web.Request, topic: str, key: str, event: msgspec.Struct) -> None:
    """Send one event as JSON and wait for the broker's ack (503 without a publisher)."""
    await publisher(request).publish(topic, key.encode(), encode(event))


def history(request: web.Request) -> History:
    """The app's history reader."""
    h = request.app[DEPS].history
    if h is None:
        raise unavailable("history not available yet")
    return h


def _read_models(request: web.Request) -> ReadModels:
    return request.app[DEPS].read_models or ReadModels()


async def caught_up(model: M | None, what: str) -> M:
    """The read model once it has caught up with its topic; 503 when the app has none, or
    when it cannot catch up within `CATCH_UP_S`."""
    if model is None:
        raise unavailable(f"{what} not available yet")
    try:
        await asyncio.wait_for(model.ready.wait(), CATCH_UP_S)
    except TimeoutError as e:
        raise unavailable(f"{what} not available yet") from e
    return model


async def registry(request: web.Request) -> RegistryModel:
    """The model registry, caught up."""
    return await caught_up(_read_models(request).registry, "model registry")


async def jobs(request: web.Request) -> JobsModel:
    """The training jobs, caught up."""
    return await caught_up(_read_models(request).jobs, "training jobs view")


async def anomalies(request: web.Request) -> AnomaliesModel:
    """The anomaly log, caught up."""
    return await caught_up(_read_models(request).anomalies, "anomaly log")


async def maintenance(request: web.Request) -> MaintenanceModel:
    """The maintenance windows, caught up."""
    return await caught_up(_read_models(request).maintenance, "maintenance log")
