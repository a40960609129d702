"""REST views: health, machines, and the readings ingest."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import msgspec
from aiohttp import HttpVersion11, hdrs, web
from aiokafka.errors import KafkaError

from api.context import publisher
from api.errors import (
    check_body_headers,
    json_response,
    not_found,
    read_body,
    unavailable,
    unprocessable,
)
from api.keys import BRIDGE, DEPS, HUB, REQUESTS, SETTINGS
from api.ports import Publisher
from schemas.machines import MACHINES, machine_by_id
from schemas.plausibility import check_plausible
from schemas.readings import InvalidRecord, Reading, decode_readings_batch, encode_reading
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
    deps = app[DEPS]
    if deps.publisher is not None:
        with contextlib.suppress(Exception):
            kafka_ok = await asyncio.wait_for(deps.publisher.reachable(READINGS), 2.0)
    if deps.subscriber is not None:
        with contextlib.suppress(Exception):
            redis_ok = await asyncio.wait_for(deps.subscriber.ping(), 2.0)
    hub = app[HUB]
    bridge = app[BRIDGE]
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
        "requests": app[REQUESTS].as_json(),
    }
    return json_response(body, status=200 if ok else 503)


def _machine_json(m: object) -> dict[str, object]:
    d: dict[str, object] = msgspec.to_builtins(m)
    return d


@routes.get("/api/v1/machines")
async def list_machines(request: web.Request) -> web.Response:
    """Machines, filtered by ``is_active`` and a case-insensitive ``search`` in name/type."""
    q = request.query
    items = list(MACHINES)
    if "is_active" in q:
        want = q["is_active"].lower()
        if want not in {"true", "false"}:
            raise unprocessable("is_active", "must be true or false", "query")
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


async def _expect_readings(request: web.Request) -> None:
    """``Expect: 100-continue``: refuse a wrong media type or an announced oversize body
    before the client sends it (curl asks so for bodies over 1 MB); else let it come."""
    check_body_headers(request, request.app[SETTINGS].max_body_bytes)
    if request.version == HttpVersion11 and \
            request.headers.get(hdrs.EXPECT, "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


@routes.post("/api/v1/readings", expect_handler=_expect_readings)
async def post_readings(request: web.Request) -> web.Response:
    """Validate a JSON batch of readings and produce them to Kafka, keyed by machine_id.

    All or nothing: one invalid or implausible reading rejects the batch with 422 naming its
    index and field (nothing is sent). 202 once Kafka has acknowledged every reading. When
    Kafka cannot take them within ``ingest_timeout_s``: 503 with ``Retry-After``, saying
    exactly which readings were acknowledged (``accepted_indexes``; none when Kafka was not
    reachable at all, then nothing was sent). Re-sending the whole batch is always safe:
    a reading is identified by (machine_id, timestamp) and counted once.
    """
    settings = request.app[SETTINGS]
    raw = await read_body(request)
    try:
        readings = decode_readings_batch(raw)
    except InvalidRecord as e:
        raise unprocessable(e.field, e.reason) from e
    if len(readings) > MAX_BATCH:
        raise unprocessable("$", f"at most {MAX_BATCH} readings per request, got {len(readings)}")
    limits, now = settings.limits(), datetime.now(UTC)
    previous: dict[str, datetime] = {}  # per machine, for the interval its energy covers
    for i, r in enumerate(readings):
        try:
            check_plausible(r, now, limits, since=previous.get(r.machine_id))
        except InvalidRecord as e:
            raise unprocessable(f"[{i}].{e.field}", e.reason) from e
        previous[r.machine_id] = max(r.timestamp, previous.get(r.machine_id, r.timestamp))
    acked, problem = await produce_all(publisher(request), readings, settings.ingest_timeout_s)
    if problem is not None:
        raise unavailable(
            f"Kafka did not acknowledge the batch within {settings.ingest_timeout_s:g} s "
            f"({problem}); {len(acked)} of {len(readings)} readings were accepted. Re-send "
            "the others, or the whole batch: readings are counted once per machine and "
            "timestamp.", accepted=len(acked), accepted_indexes=acked,
            not_confirmed=len(readings) - len(acked))
    return json_response({"accepted": len(readings), "topic": READINGS}, status=202)


async def produce_all(producer: Publisher, readings: list[Reading],
                      timeout: float) -> tuple[list[int], str | None]:
    """Produce the readings; return the indexes Kafka acknowledged within ``timeout`` and,
    if not all, what went wrong.

    Nothing is sent unless the leaders of the readings topic answer first: with Kafka down
    the batch is refused whole (no reading of it sent), not half written. A reading sent but
    not acknowledged in time may still arrive later (the producer retries it); that is why
    a re-sent reading must be, and is, harmless.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    futures: list[asyncio.Future[object]] = []
    try:
        async with asyncio.timeout_at(deadline):
            await producer.check_leaders(READINGS)
            for r in readings:
                futures.append(await producer.send(
                    READINGS, r.machine_id.encode(), encode_reading(r),
                    int(r.timestamp.timestamp() * 1000)))
            await asyncio.gather(*futures)
        return list(range(len(readings))), None
    except (TimeoutError, KafkaError, OSError) as e:
        acked = [i for i, f in enumerate(futures)
                 if f.done() and not f.cancelled() and f.exception() is None]
        for f in futures:  # no one awaits these any more: take their outcome quietly
            f.add_done_callback(lambda f: f.cancelled() or f.exception())
        return acked, "timed out" if isinstance(e, TimeoutError) else repr(e)
