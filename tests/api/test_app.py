"""api/app.py: the deps say which ports the app is given; it builds the others at startup
(and stops them at cleanup), and runs the bridge only with the Redis subscriber it feeds."""

from __future__ import annotations

import asyncio
import socket

from pytest_aiohttp import AiohttpClient

from api.adapters import KafkaHistory
from api.app import create_app
from api.bridge import BridgeStats, RedisSubscriber
from api.keys import BRIDGE, DEPS
from api.ports import Deps
from streams.settings import Settings
from streams.views import AnomaliesView, JobsView, MaintenanceView, RegistryView
from tests.api.fakes import Client, Fakes


def _closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable() -> Settings:
    """Settings whose Kafka and Redis refuse every connection."""
    return Settings(kafka_bootstrap=f"127.0.0.1:{_closed_port()}",
                    redis_url=f"redis://127.0.0.1:{_closed_port()}/0")


async def test_the_given_ports_are_the_ones_used(client: Client, fakes: Fakes) -> None:
    deps = client.app[DEPS]
    assert deps.publisher is fakes.publisher and deps.subscriber is fakes.subscriber
    assert deps.history is fakes.history
    assert deps.read_models is not None and deps.read_models.registry is fakes.registry
    assert client.app[BRIDGE] is None  # nothing to feed: the hub has its own subscriber


async def test_the_ports_left_out_are_built_at_startup(aiohttp_client: AiohttpClient,
                                                       fakes: Fakes) -> None:
    given = Deps(publisher=fakes.publisher)
    client = await aiohttp_client(create_app(unreachable(), given))
    deps = client.app[DEPS]
    assert deps.publisher is fakes.publisher
    assert isinstance(deps.subscriber, RedisSubscriber)
    assert isinstance(deps.history, KafkaHistory)
    models = deps.read_models
    assert models is not None
    assert (type(models.registry), type(models.jobs), type(models.anomalies),
            type(models.maintenance)) == (RegistryView, JobsView, AnomaliesView,
                                          MaintenanceView)
    assert isinstance(client.app[BRIDGE], BridgeStats)  # it feeds the Redis subscriber
    assert given.subscriber is None and given.read_models is None  # the caller's are left as is
    body = await (await client.get("/health")).json()
    assert body["redis"] == {"connected": False}
    assert body["bridge"]["running"] is False and body["bridge"]["forwarded"] == 0


async def test_without_kafka_the_publisher_stays_missing_and_the_app_stops_cleanly(
        aiohttp_client: AiohttpClient, fakes: Fakes) -> None:
    deps = fakes.deps()
    deps.publisher = None
    client = await aiohttp_client(create_app(unreachable(), deps))
    await asyncio.sleep(0.3)  # a few connection attempts
    assert client.app[DEPS].publisher is None
    body = await (await client.get("/health")).json()
    assert body["kafka"]["connected"] is False and body["status"] == "degraded"
    await asyncio.wait_for(client.close(), 10)  # cleanup cancels the retries
