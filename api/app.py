"""The aiohttp application factory.

``create_app(settings)`` connects to Redis and Kafka in ``cleanup_ctx`` (never at import or
in a constructor), runs the Kafka-to-Redis bridge and the Redis-to-hub listener as background
tasks, and serves the REST API, the WebSockets and the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiokafka import AIOKafkaProducer

from api import anomaly, baseline, maintenance, model_performance, openapi, views, ws
from api.bridge import BridgeStats, Subscribe, forward, redis_subscribe
from api.errors import Handler, body_guard, unavailable_on_outage
from api.hub import Hub
from api.keys import BRIDGE, CONN, HUB, REQUESTS, SETTINGS, SUBSCRIBE, Connections, RequestCounts
from streams.admin import ensure_topics
from streams.settings import Settings
from streams.views import AnomaliesView, JobsView, MaintenanceView, RegistryView

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


async def _retrying(what: str, start: object, attempts: int | None = None) -> None:
    """Await ``start()`` until it succeeds, backing off up to 5 s between tries."""
    delay, n = 0.2, 0
    while True:
        try:
            await start()  # type: ignore[operator]
            return
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any connect failure is retried
            n += 1
            if attempts is not None and n >= attempts:
                raise
            log.warning("%s: not reachable yet (%s); retrying in %.1fs", what, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _connections(app: web.Application) -> AsyncIterator[None]:
    settings, conn = app[SETTINGS], app[CONN]
    tasks: list[asyncio.Task[None]] = []
    if app[SUBSCRIBE] is None or app[BRIDGE] is not None:
        conn.redis = aioredis.from_url(settings.redis_url)
    if app[BRIDGE] is not None and conn.producer is None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=2,
                                    acks="all", enable_idempotence=True)

        async def start_producer() -> None:
            await _retrying("kafka producer", producer.start)
            conn.producer = producer

        tasks.append(asyncio.create_task(start_producer()))
    if app[BRIDGE] is not None:
        tasks.append(asyncio.create_task(_bridge_forever(app)))
        conn.registry, conn.jobs = RegistryView(settings), JobsView(settings)
        conn.anomalies = AnomaliesView(settings)
        conn.maintenance = MaintenanceView(settings)
        for view in (conn.registry, conn.jobs, conn.anomalies, conn.maintenance):
            await view.start()
    subscribe = app[SUBSCRIBE] or redis_subscribe(conn.redis)
    tasks.append(asyncio.create_task(_listen(app, subscribe), name="hub-listener"))
    yield
    for view in (conn.registry, conn.jobs, conn.anomalies, conn.maintenance):
        if view is not None:
            await view.stop()
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t
    if conn.producer is not None:
        await conn.producer.stop()
    if conn.redis is not None:
        await conn.redis.aclose()


async def _bridge_forever(app: web.Application) -> None:
    """Run the bridge; restart it after a failure (Kafka restart, rebalance error)."""
    settings, conn, stats = app[SETTINGS], app[CONN], app[BRIDGE]
    assert conn.redis is not None  # noqa: S101
    while True:
        try:
            await ensure_topics(settings)  # the bridge may start before any worker did
            await forward(settings, conn.redis, stats)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("bridge stopped; restarting in 2 s")
            await asyncio.sleep(2.0)


async def _listen(app: web.Application, subscribe: Subscribe) -> None:
    """Feed the hub from ``subscribe()``, forever: if the subscription fails (or ends), start
    it again, backing off from 0.2 s up to 5 s while it keeps failing; its state is in
    ``hub.listener`` for /health. (A malformed message does not stop it: `Hub.publish` drops
    it.) Without this, one failure would leave the process serving no live events at all."""
    hub = app[HUB]
    state = hub.listener
    delay = 0.2
    while True:
        try:
            state.running = True
            async with contextlib.aclosing(subscribe()) as messages:
                async for _channel, payload in messages:
                    hub.publish(payload)
                    delay = 0.2  # delivering again: the next failure starts the backoff anew
            state.last_error = "the subscription ended"
            log.warning("hub listener: the subscription ended; restarting in %.1fs", delay)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            state.last_error = f"{type(e).__name__}: {e}"[:500]
            log.exception("hub listener failed; restarting in %.1fs", delay)
        finally:
            state.running = False
        state.restarts += 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


@web.middleware
async def _count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer by status (an exception a view lets out is aiohttp's 500)."""
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        request.app[REQUESTS].by_status[status] += 1


async def _close_websockets(app: web.Application) -> None:
    await app[HUB].close_all()


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


def create_app(
    settings: Settings,
    *,
    subscribe: Subscribe | None = None,
    producer: AIOKafkaProducer | None = None,
    start_bridge: bool = True,
) -> web.Application:
    """Build the API application.

    Parameters
    ----------
    settings
        Service settings.
    subscribe
        Source of ``(channel, payload)`` pairs for the hub; default: Redis pub/sub. Tests pass
        an async generator.
    producer
        A started Kafka producer for the readings ingest; default: one made at startup.
    start_bridge
        Run the Kafka-to-Redis bridge and connect to Kafka. With ``False`` and a
        ``subscribe``, the app needs neither Kafka nor Redis.
    """
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[_count_requests, unavailable_on_outage,
                                       body_guard(settings.max_body_bytes)])
    app[REQUESTS] = RequestCounts()
    app[SETTINGS] = settings
    app[HUB] = Hub()
    app[SUBSCRIBE] = subscribe  # type: ignore[assignment]
    app[CONN] = Connections(producer=producer)
    app[BRIDGE] = BridgeStats() if start_bridge else None  # type: ignore[assignment]
    app.cleanup_ctx.append(_connections)
    app.on_shutdown.append(_close_websockets)
    app.router.add_routes(views.routes)
    app.router.add_routes(ws.routes)
    app.router.add_routes(baseline.routes)
    app.router.add_routes(anomaly.routes)
    app.router.add_routes(model_performance.routes)
    app.router.add_routes(maintenance.routes)
    app.router.add_routes(openapi.routes)
    app.router.add_get("/", _index)
    app.router.add_static("/static", STATIC)
    return app


class _BadHttpOneLine(logging.Filter):
    """aiohttp logs every malformed HTTP request (a NUL in a header, a request line over
    8190 bytes) with a traceback at ERROR, though it answers 400 and nothing failed. A
    stranger can send thousands: keep one line each, as a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = "bad HTTP request answered %s: %s", (
                exc.code, str(exc.message).strip().splitlines()[0][:200])
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def run(settings: Settings) -> None:
    """Serve until interrupted."""
    logging.getLogger("aiohttp.server").addFilter(_BadHttpOneLine())
    web.run_app(create_app(settings), host=settings.api_host, port=settings.api_port,
                access_log=None, print=lambda *_: log.info(
                    "API on http://%s:%s/", settings.api_host, settings.api_port))
