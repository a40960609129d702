"""Error bodies, in the shape old EnMS clients read (`error` builds every one:
``{"detail": ...}``); and the guards every request body passes (media type and size before a
view reads it, nesting before it is parsed)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from api.keys import SETTINGS
from schemas.jsondepth import MAX_DEPTH, too_deep

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Methods whose requests may carry a body; one that does must be JSON.
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def json_response(data: Any, status: int = 200) -> web.Response:
    """orjson-encoded JSON response."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error(cls: Callable[..., web.HTTPError], detail: object,
          headers: Mapping[str, str] | None = None, **extra: Any) -> web.HTTPError:
    """An HTTP error of class ``cls`` with the JSON body ``{"detail": detail, **extra}``.

    Every error body of the API is built here (the helpers below call it), in the shape the
    old EnMS clients read.

    Examples
    --------
    >>> e = error(web.HTTPConflict, "already running", training_job_id="j1")
    >>> e.status, e.content_type, e.text
    (409, 'application/json', '{"detail":"already running","training_job_id":"j1"}')
    """
    return cls(text=orjson.dumps({"detail": detail, **extra}).decode(),
               content_type="application/json", headers=headers)


def unprocessable(field: str, reason: str, where: str = "body") -> web.HTTPError:
    """422 naming the field that failed, as FastAPI/Pydantic did for the old clients.

    ``field`` is a path like ``[3].power_kw`` or ``power_kw``, in the request's ``where``
    (``body``, ``query`` or ``path``); ``loc`` splits it into parts.

    Examples
    --------
    >>> orjson.loads(unprocessable("[3].power_kw", "must be a number").text)
    {'detail': [{'loc': ['body', 3, 'power_kw'], 'field': '[3].power_kw',
                 'msg': 'must be a number', 'type': 'value_error'}]}
    """
    loc: list[Any] = [where]
    for part in field.replace("[", ".[").split("."):
        if not part or part == "$":
            continue
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    return error(web.HTTPUnprocessableEntity,
                 [{"loc": loc, "field": field, "msg": reason, "type": "value_error"}])


def bad_request(detail: str, **extra: Any) -> web.HTTPError:
    """400: the request is well-formed, but cannot be served (no data, a failed job)."""
    return error(web.HTTPBadRequest, detail, **extra)


def not_found(detail: str) -> web.HTTPError:
    """404 with a detail text."""
    return error(web.HTTPNotFound, detail)


def too_large(detail: str, max_bytes: int) -> web.HTTPError:
    """413 with a JSON body naming the limit."""
    return error(functools.partial(web.HTTPRequestEntityTooLarge, max_bytes), detail,
                 max_bytes=max_bytes)


def unavailable(detail: str, retry_after_s: int = 5, **extra: Any) -> web.HTTPError:
    """503 with ``Retry-After``: a dependency (Kafka, a view of it) cannot answer now."""
    return error(web.HTTPServiceUnavailable, detail, {hdrs.RETRY_AFTER: str(retry_after_s)},
                 **extra)


def check_body_headers(request: web.Request, max_bytes: int) -> None:
    """415 unless a request with a body says it is JSON; 413 when it announces more than
    ``max_bytes``. Reads nothing: usable from an ``Expect: 100-continue`` handler."""
    if request.method not in _WITH_BODY:
        return
    length = request.content_length
    if not request.body_exists and not length:
        return
    if request.content_type != "application/json":
        # Also what stops a web page from posting here without a CORS preflight: a form or
        # a text/plain fetch is a "simple request", application/json is not.
        raise error(web.HTTPUnsupportedMediaType,
                    f"Content-Type must be application/json, got {request.content_type!r}")
    if length is not None and length > max_bytes:
        raise too_large(f"a body of {length} bytes; at most {max_bytes} are accepted", max_bytes)


@web.middleware
async def unavailable_on_outage(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A view that meets an outage (Kafka or Redis unreachable, no ack in time) answers 503
    with ``Retry-After``, never 500: the request may well succeed later."""
    try:
        return await handler(request)
    except (KafkaError, RedisError, OSError, TimeoutError) as e:
        log.warning("%s %s: %s; answered 503", request.method, request.path, repr(e)[:200])
        raise unavailable(f"a dependency did not answer in time ({type(e).__name__}); "
                          "retry later") from e


def body_guard(max_bytes: int) -> Middleware:
    """Middleware: `check_body_headers` before every view."""
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        check_body_headers(request, max_bytes)
        return await handler(request)
    return guard


async def read_body(request: web.Request) -> bytes:
    """The request body, at most ``max_body_bytes`` (413 past it, while reading: a chunked
    body announces no length). Its parser checks the nesting (`json_object`,
    `schemas.readings.decode_readings_batch`) before it recurses."""
    try:
        raw = await request.read()  # create_app sets client_max_size to max_body_bytes
    except web.HTTPRequestEntityTooLarge as e:
        limit = request.app[SETTINGS].max_body_bytes
        raise too_large(f"a body of more than {limit} bytes; at most {limit} are accepted",
                        limit) from e
    return raw


async def json_object(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The request body as a JSON object (``{}`` for an empty body when ``empty_ok``); 422
    when it is not one, or nested deeper than `MAX_DEPTH` (naming the place); see
    `read_body` for its size."""
    raw = await read_body(request)
    if empty_ok and not raw.strip():
        return {}
    place = too_deep(raw)
    if place is not None:
        raise unprocessable(place, f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise unprocessable("$", f"malformed JSON: {e}") from e
    if not isinstance(body, dict):
        raise unprocessable("$", "expected a JSON object")
    return body
