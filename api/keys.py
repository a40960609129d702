"""Typed application keys (aiohttp `web.AppKey`) and the state they hold."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from api.bridge import BridgeStats
from api.hub import Hub
from api.ports import Deps
from streams.settings import Settings

#: Training jobs this process queued that the log has not shown yet: (machine, type) ->
#: (job id, queued at); closes the gap between a trigger and its training_started.
Pending = dict[tuple[str, str], tuple[str, datetime]]


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
#: The ports in use: those the app was given, the others filled in at startup.
DEPS = web.AppKey("deps", Deps)
PENDING: web.AppKey[Pending] = web.AppKey("pending")
#: The Kafka-to-Redis bridge's figures; None in an app that runs no bridge.
BRIDGE: web.AppKey[BridgeStats | None] = web.AppKey("bridge")
__all__ = ["BRIDGE", "DEPS", "HUB", "PENDING", "REQUESTS", "SETTINGS", "Pending",
           "RequestCounts"]
