"""Typed application keys (aiohttp `web.AppKey`) and the connection holder."""

from __future__ import annotations

from collections import Counter
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


@dataclass
class RequestCounts:
    """HTTP answers of this process by status, for /health (and the API fuzzer's figures)."""

    by_status: Counter[int] = field(default_factory=Counter)

    def as_json(self) -> dict[str, object]:
        """Totals, and counts per status class and per status."""
        classes: Counter[str] = Counter()
        for status, n in self.by_status.items():
            classes[f"{status // 100}xx"] += n
        return {"total": sum(self.by_status.values()), **dict(sorted(classes.items())),
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())}}


SETTINGS = web.AppKey("settings", Settings)
REQUESTS = web.AppKey("requests", RequestCounts)
HUB = web.AppKey("hub", Hub)
SUBSCRIBE = web.AppKey("subscribe", object)
CONN = web.AppKey("conn", Connections)
BRIDGE = web.AppKey("bridge", BridgeStats)
__all__ = ["BRIDGE", "CONN", "HUB", "REQUESTS", "SETTINGS", "SUBSCRIBE", "Connections",
           "RequestCounts", "Subscribe"]
