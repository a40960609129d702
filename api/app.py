"""The aiohttp application factory.

``create_app(settings, deps)`` serves the REST API, the WebSockets and the dashboard over the
ports in ``deps`` (`api.ports.Deps`). Those the deps leave out are built in ``cleanup_ctx``
(never at import or in a constructor) from the settings: the Kafka producer (connecting in
the background, with retries), the views of the topics, history from Kafka, and Redis
pub/sub for the hub together with the Kafka-to-Redis bridge that feeds it. The hub listener
always runs, over whichever subscriber the app has.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiokafka import AIOKafkaProducer

from api import anomaly, baseline, maintenance, model_performance, openapi, views, ws
from api.adapters import KafkaHistory, KafkaPublisher
from api.bridge import BridgeStats, RedisSubscriber, forward
from api.errors import Handler, body_guard, unavailable_on_outage
from api.hub import Hub
from api.keys import BRIDGE, DEPS, HUB, PENDING, REQUESTS, SETTINGS, RequestCounts
from api.ports import Deps, ReadModels, Subscriber
from streams.admin import ensure_topics
from streams.settings import Settings
from streams.views import AnomaliesView, JobsView, MaintenanceView, RegistryView

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


async def _retrying(what: str, start: Callable[[], Awaitable[object]],
                    attempts: int | None = None) -> None:
    """Await ``start()`` until it succeeds, backing off up to 5 s between tries."""
    delay, n = 0.2, 0
    while True:
        try:
            await start()
            return
        except asyncio.CancelledError:
            raise
        except Exception as e:  # any connect failure is retried
            n += 1
            if attempts is not None and n >= attempts:
                raise
            log.warning("%s: not reachable yet (%s); retrying in %.1fs", what, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Build the ports the deps did not provide, run the background tasks, and stop them
    all at cleanup (tasks first, then the clients, in reverse order of start)."""
    settings, deps, bridge = app[SETTINGS], app[DEPS], app[BRIDGE]
    tasks: list[asyncio.Task[None]] = []
    async with contextlib.AsyncExitStack() as stack:
        if deps.publisher is None:
            producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=2,
                                        acks="all", enable_idempotence=True)

            async def start_publisher() -> None:
                await _retrying("kafka producer", producer.start)
                stack.push_async_callback(producer.stop)
                deps.publisher = KafkaPublisher(producer)

            tasks.append(asyncio.create_task(start_publisher(), name="kafka-producer"))
        if deps.subscriber is None:
            redis = aioredis.from_url(settings.redis_url)
            stack.push_async_callback(redis.aclose)
            deps.subscriber = RedisSubscriber(redis)
            if bridge is not None:
                tasks.append(asyncio.create_task(_bridge_forever(settings, redis, bridge),
                                                 name="bridge"))
        if deps.read_models is None:
            registry, jobs = RegistryView(settings), JobsView(settings)
            anomalies, maintenance_ = AnomaliesView(settings), MaintenanceView(settings)
            for view in (registry, jobs, anomalies, maintenance_):
                await view.start()
                stack.push_async_callback(view.stop)
            deps.read_models = ReadModels(registry=registry, jobs=jobs, anomalies=anomalies,
                                          maintenance=maintenance_)
        if deps.history is None:
            deps.history = KafkaHistory(settings)
        tasks.append(asyncio.create_task(_listen(app, deps.subscriber), name="hub-listener"))
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t


async def _bridge_forever(settings: Settings, redis: aioredis.Redis, stats: BridgeStats) -> None:
    """Run the bridge; restart it after a failure (Kafka restart, rebalance error)."""
    while True:
        try:
            await ensure_topics(settings)  # the bridge may start before any worker did
            await forward(settings, redis, stats)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("bridge stopped; restarting in 2 s")
            await asyncio.sleep(2.0)


async def _listen(app: web.Application, subscriber: Subscriber) -> None:
    """Feed the hub from ``subscriber``, forever: if the subscription fails (or ends), start
    it again, backing off from 0.2 s up to 5 s while it keeps failing; its state is in
    ``hub.listener`` for /health. (A malformed message does not stop it: `Hub.publish` drops
    it.) Without this, one failure would leave the process serving no live events at all."""
    hub = app[HUB]
    state = hub.listener
    delay = 0.2
    while True:
        try:
            state.running = True
            async with contextlib.aclosing(subscriber.messages()) as messages:
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


def create_app(settings: Settings, deps: Deps | None = None) -> web.Application:
    """Build the API application.

    Parameters
    ----------
    settings
        Service settings.
    deps
        The ports the views use (`api.ports.Deps`); each one left ``None`` (all, by
        default) is built from ``settings`` at startup. The Kafka-to-Redis bridge runs when
        the app builds its own Redis subscriber: it is what feeds it. With every port given,
        the app needs neither Kafka nor Redis.
    """
    deps = dataclasses.replace(deps) if deps is not None else Deps()  # filled in at startup
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[_count_requests, unavailable_on_outage,
                                       body_guard(settings.max_body_bytes)])
    app[REQUESTS] = RequestCounts()
    app[SETTINGS] = settings
    app[HUB] = Hub()
    app[DEPS] = deps
    app[PENDING] = {}
    app[BRIDGE] = BridgeStats() if deps.subscriber is None else None
    app.cleanup_ctx.append(_resources)
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
