"""REST views: health, machines, and the readings ingest."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from api.errors import json_response, not_found, unprocessable
from api.keys import BRIDGE, CONN, HUB, SETTINGS
from schemas.machines import MACHINES, machine_by_id
from schemas.readings import InvalidRecord, decode_readings_batch, encode_reading
from streams.topics import READINGS

routes = web.RouteTableDef()

#: Largest batch one POST may carry.
MAX_BATCH = 10_000


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    """Kafka, Redis, bridge, hub listener and WebSocket state; 503 when Kafka or Redis is
    unreachable."""
    app = request.app
    kafka_ok = redis_ok = False
    producer = app[CONN].producer
    if producer is not None:
        with contextlib.suppress(Exception):
            parts = await asyncio.wait_for(producer.partitions_for(READINGS), 2.0)
            kafka_ok = bool(parts)
    redis = app[CONN].redis
    if redis is not None:
        with contextlib.suppress(Exception):
            redis_ok = bool(await asyncio.wait_for(redis.ping(), 2.0))
    hub = app[HUB]
    bridge = app.get(BRIDGE)
    counts = hub.counts()
    ok = kafka_ok and redis_ok
    body = {
        "status": "healthy" if ok else "degraded",
        "kafka": {"connected": kafka_ok, "bootstrap": app[SETTINGS].kafka_bootstrap},
        "redis": {"connected": redis_ok},
        "websocket": {"connections": sum(counts.values()), "by_type": counts,
                      "delivered": hub.delivered, "duplicates_dropped": hub.duplicates},
        "hub": {"running": hub.listener.running, "restarts": hub.listener.restarts,
                "last_error": hub.listener.last_error, "malformed": hub.malformed},
        "bridge": None if bridge is None else {
            "running": bridge.running, "forwarded": bridge.forwarded,
            "malformed": bridge.malformed, "skipped": bridge.skipped,
            "redis_errors": bridge.redis_errors, "assigned_partitions": bridge.assigned},
    }
    return json_response(body, status=200 if ok else 503)


def _machine_json(m: object) -> dict[str, object]:
    from msgspec import to_builtins

    return to_builtins(m)  # type: ignore[no-any-return]


@routes.get("/api/v1/machines")
async def list_machines(request: web.Request) -> web.Response:
    """Machines, filtered by ``is_active`` and a case-insensitive ``search`` in name/type."""
    q = request.query
    items = list(MACHINES)
    if "is_active" in q:
        want = q["is_active"].lower()
        if want not in {"true", "false"}:
            raise unprocessable("is_active", "must be true or false", ("query",))
        items = [m for m in items if m.is_active == (want == "true")]
    if search := q.get("search", "").strip().lower():
        items = [m for m in items if search in m.name.lower() or search in m.type]
    return json_response([_machine_json(m) for m in items])


@routes.get("/api/v1/machines/{machine_id}")
async def get_machine(request: web.Request) -> web.Response:
    """One machine, 404 if unknown."""
    m = machine_by_id(request.match_info["machine_id"])
    if m is None:
        raise not_found(f"machine {request.match_info['machine_id']} not found")
    return json_response(_machine_json(m))


@routes.post("/api/v1/readings")
async def post_readings(request: web.Request) -> web.Response:
    """Validate a JSON batch of readings and produce them to Kafka, keyed by machine_id.

    All or nothing: one invalid reading rejects the batch with 422 naming its index and
    field. Answers 202 once Kafka has acknowledged every reading.
    """
    raw = await request.read()
    try:
        readings = decode_readings_batch(raw)
    except InvalidRecord as e:
        raise unprocessable(e.field, e.reason) from e
    if len(readings) > MAX_BATCH:
        raise unprocessable("$", f"at most {MAX_BATCH} readings per request, got {len(readings)}")
    producer = request.app[CONN].producer
    if producer is None:
        raise web.HTTPServiceUnavailable(text="Kafka producer not available")
    futures = [
        await producer.send(READINGS, key=r.machine_id.encode(), value=encode_reading(r),
                            timestamp_ms=int(r.timestamp.timestamp() * 1000))
        for r in readings
    ]
    await asyncio.gather(*futures)
    return json_response({"accepted": len(readings), "topic": READINGS}, status=202)
