"""WebSocket hub: fans events out to the clients of this API process.

Each client has a bounded queue and its own writer task, so a slow client never delays the
others; a client whose queue overflows is closed (it reconnects and carries on). Events are
deduplicated by ``event_id``: a Kafka rebalance can re-deliver an event to the bridge, and a
client must still see it once. A message that is not a well-formed event (anyone can PUBLISH
on the Redis channels) is counted and dropped; `Hub.publish` never raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from api.bridge import NotAnEvent, event_head

log = logging.getLogger(__name__)

TRAINING_TYPES = frozenset(
    {"training_started", "training_progress", "training_completed", "training_failed"})
#: Which event types each WebSocket path receives (None = all). `dashboard` and `events` take
#: all: the old `events` path got only system_alert, which this still includes.
GROUPS: dict[str, frozenset[str] | None] = {
    "dashboard": None,
    "anomalies": frozenset({"anomaly_detected", "anomaly_episode", "anomaly_resolved"}),
    "training": TRAINING_TYPES,
    "events": None,
}


@dataclass(eq=False)
class Client:
    """One connected WebSocket."""

    ws: web.WebSocketResponse
    client_id: str
    connection_type: str
    machine_id: str | None = None
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    sent: int = 0

    def wants(self, event_type: str, machine_id: str | None) -> bool:
        """Whether this client's path and filter take the event."""
        types = GROUPS[self.connection_type]
        if types is not None and event_type not in types:
            return False
        return self.machine_id is None or machine_id in (None, self.machine_id)


@dataclass
class ListenerState:
    """The task that feeds the hub from Redis (api.app._listen), for /health."""

    running: bool = False
    #: Times it failed (or its subscription ended) and was started again.
    restarts: int = 0
    #: Why it last stopped, e.g. ``"ConnectionError: ..."``; None if it never did.
    last_error: str | None = None


class Hub:
    """The set of clients of this process and the fan-out to them."""

    def __init__(self, dedupe_size: int = 10_000) -> None:
        self.clients: set[Client] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._dedupe_size = dedupe_size
        self.delivered = 0
        self.duplicates = 0
        self.malformed = 0
        self.listener = ListenerState()

    def counts(self) -> dict[str, int]:
        """Connections per path."""
        out = dict.fromkeys(GROUPS, 0)
        for c in self.clients:
            out[c.connection_type] += 1
        return out

    def _is_duplicate(self, event_id: str) -> bool:
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            return True
        self._seen[event_id] = None
        if len(self._seen) > self._dedupe_size:
            self._seen.popitem(last=False)
        return False

    def publish(self, payload: bytes) -> int:
        """Queue one event (JSON of the event dict) for every client that wants it.

        Returns the number of clients it was queued for. Anything that is not a well-formed
        event (`api.bridge.event_head`: any bytes, or not bytes at all) is counted in
        ``malformed`` and dropped; this never raises.
        """
        try:
            event_type, event_id, machine_id = event_head(payload)
        except NotAnEvent as e:
            self.malformed += 1
            log.warning("hub: dropped a message that is not an event (%s): %.200r", e, payload)
            return 0
        if self._is_duplicate(event_id):
            self.duplicates += 1
            return 0
        # Build the frame once: {"type": ..., "data": <payload as received>}. event_head
        # checked that the payload is JSON and UTF-8, so the frame is JSON too.
        frame = '{"type":' + orjson.dumps(event_type).decode() + ',"data":' + \
            payload.decode() + "}"
        n = 0
        for c in list(self.clients):
            if not c.wants(event_type, machine_id):
                continue
            try:
                c.queue.put_nowait(frame)
                n += 1
            except asyncio.QueueFull:
                log.warning("hub: client %s is too slow; closing it", c.client_id)
                self.clients.discard(c)
                asyncio.get_running_loop().create_task(
                    c.ws.close(code=1013, message=b"too slow"))
        self.delivered += n
        return n

    async def writer(self, c: Client) -> None:
        """Send a client's queued frames until it goes away."""
        while True:
            frame = await c.queue.get()
            try:
                await c.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return
            c.sent += 1

    async def close_all(self) -> None:
        """Close every client (server shutdown)."""
        for c in list(self.clients):
            with contextlib.suppress(Exception):
                await c.ws.close(code=1001, message=b"server shutdown")
        self.clients.clear()
