"""WebSocket endpoint: ``/api/v1/ws/{dashboard|anomalies|training|events}``."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

import orjson
from aiohttp import WSMsgType, web

from api.errors import not_found
from api.hub import GROUPS, Client
from api.keys import HUB, SETTINGS

routes = web.RouteTableDef()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _is_ping(data: str) -> bool:
    """Both heartbeat forms: the text ``ping`` and JSON ``{"type": "ping"}``."""
    if data.strip() == "ping":
        return True
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(msg, dict) and msg.get("type") == "ping"


@routes.get("/api/v1/ws/{connection_type}")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Send a connection message, then events as ``{type, data}``; answer pings with pongs.

    Query: ``client_id`` (a uuid4 is made if missing), ``machine_id`` (only that machine's
    events, plus events of no machine).
    """
    kind = request.match_info["connection_type"]
    if kind not in GROUPS:
        raise not_found(f"no WebSocket {kind!r}; use one of {', '.join(GROUPS)}")
    ws = web.WebSocketResponse(heartbeat=request.app[SETTINGS].ws_ping_interval_s)
    await ws.prepare(request)
    hub = request.app[HUB]
    client = Client(ws=ws, client_id=request.query.get("client_id") or str(uuid.uuid4()),
                    connection_type=kind, machine_id=request.query.get("machine_id") or None)
    # The connection message goes first in the client's queue, and the client joins the hub
    # in the same step, so no event published meanwhile is missed or sent before it.
    client.queue.put_nowait(orjson.dumps({
        "type": "connection", "status": "connected", "client_id": client.client_id,
        "connection_type": kind, "timestamp": _now()}).decode())
    hub.clients.add(client)
    writer = asyncio.create_task(hub.writer(client))
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and _is_ping(msg.data):
                await client.queue.put(orjson.dumps({"type": "pong", "timestamp": _now()}).decode())
    finally:
        hub.clients.discard(client)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
    return ws
