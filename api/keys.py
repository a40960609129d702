"""Typed application keys (aiohttp `web.AppKey`) and the connection holder."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaProducer

from api.bridge import BridgeStats, Subscribe
from api.hub import Hub
from streams.settings import Settings
from streams.views import AnomaliesView, JobsView, MaintenanceView, RegistryView


@dataclass
class Connections:
    """Outbound clients; None until connected (they connect in the background, with retries,
    so the API serves /health and the dashboard while Kafka or Redis is still starting)."""

    producer: AIOKafkaProducer | None = None
    redis: aioredis.Redis | None = None
    registry: RegistryView | None = None
    jobs: JobsView | None = None
    anomalies: AnomaliesView | None = None
    maintenance: MaintenanceView | None = None
    #: Training jobs this process queued that the log has not shown yet: (machine, type) ->
    #: (job id, queued at); closes the gap between a trigger and its training_started.
    pending: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)


SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)
SUBSCRIBE = web.AppKey("subscribe", object)
CONN = web.AppKey("conn", Connections)
BRIDGE = web.AppKey("bridge", BridgeStats)
__all__ = ["BRIDGE", "CONN", "HUB", "SETTINGS", "SUBSCRIBE", "Connections", "Subscribe"]
