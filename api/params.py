"""Request parameters the views share: a machine, a time, a window, a choice, a text.

Each returns the checked value or raises a 422 naming the field (`api.errors.unprocessable`),
``where`` being the part of the request it came from (``query``, ``body`` or ``path``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.errors import not_found, unprocessable
from schemas.machines import Machine, machine_by_id

#: Times a request may name: nothing of this system is older, and past 2100 is a typo.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: Longest free text (notes, reasons) a request may carry.
MAX_TEXT = 1000


def machine_param(value: object, where: str = "query") -> Machine:
    """A known machine from a request parameter: 422 when missing or not text, 404 when
    unknown.

    Examples
    --------
    >>> machine_param("c0000000-0000-0000-0000-000000000001").name
    'Compressor-1'
    """
    if value is None or value == "":
        raise unprocessable("machine_id", "field required", where)
    if not isinstance(value, str):
        raise unprocessable("machine_id", "must be text", where)
    m = machine_by_id(value)
    if m is None:
        raise not_found(f"machine {value[:80]} not found")
    return m


def choice(value: str | None, field: str, allowed: tuple[str, ...], default: str) -> str:
    """A query parameter from a fixed set (422 naming the allowed values)."""
    v = value or default
    if v not in allowed:
        raise unprocessable(field, f"must be one of {', '.join(allowed)}; got {v!r}", "query")
    return v


def time_param(value: object, field: str, where: str = "query") -> datetime | None:
    """ISO 8601 time from 2000 to 2100; naive means UTC; None when missing; 422 when
    malformed or outside."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise unprocessable(field, "must be an ISO 8601 time as text", where)
    try:
        t = datetime.fromisoformat(value)
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        inside = EARLIEST <= t < LATEST
        offset = t.utcoffset()
    except (ValueError, OverflowError) as e:
        raise unprocessable(field, f"not an ISO 8601 time: {value[:40]!r}", where) from e
    if offset is not None and offset.total_seconds() % 60:
        # RFC 3339 offsets are whole minutes; msgspec would drop the seconds when encoding.
        raise unprocessable(field, "a UTC offset in whole minutes, e.g. +01:00", where)
    if not inside:
        raise unprocessable(field, f"must lie between {EARLIEST.date()} and {LATEST.date()}",
                            where)
    return t


def window(start: datetime, end: datetime, longest: timedelta, field: str = "end",
           where: str = "query") -> None:
    """422 unless ``start < end`` and the window lasts at most ``longest``."""
    if end <= start:
        raise unprocessable(field, "must be after the start", where)
    if end - start > longest:
        raise unprocessable(field, f"a window may last at most {longest.days} days", where)


def text_param(value: object, field: str, where: str = "query", default: str = "") -> str:
    """Free text of at most `MAX_TEXT` characters (422 otherwise)."""
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise unprocessable(field, f"must be text of at most {MAX_TEXT} characters", where)
    return value
