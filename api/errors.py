"""Error bodies, in the shape old EnMS clients read: ``{"detail": ...}``."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def json_response(data: Any, status: int = 200) -> web.Response:
    """orjson-encoded JSON response."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def unprocessable(field: str, reason: str, loc_prefix: tuple[Any, ...] = ("body",)) -> web.HTTPError:
    """422 naming the field that failed, as FastAPI/Pydantic did for the old clients.

    ``field`` is a path like ``[3].power_kw`` or ``power_kw``; ``loc`` splits it into parts.
    """
    loc: list[Any] = list(loc_prefix)
    for part in field.replace("[", ".[").split("."):
        if not part or part == "$":
            continue
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    body = {"detail": [{"loc": loc, "field": field, "msg": reason, "type": "value_error"}]}
    return web.HTTPUnprocessableEntity(text=orjson.dumps(body).decode(),
                                       content_type="application/json")


def not_found(detail: str) -> web.HTTPError:
    """404 with a detail text."""
    return web.HTTPNotFound(text=orjson.dumps({"detail": detail}).decode(),
                            content_type="application/json")


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; 422 when it is not one."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as e:
        raise unprocessable("$", f"malformed JSON: {e}") from e
    if not isinstance(body, dict):
        raise unprocessable("$", "expected a JSON object")
    return body
