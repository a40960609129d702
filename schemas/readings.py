"""The `Reading` record (namespace ``enms.reading``, version 1) and its strict decoder.

A reading is one meter sample of one machine. Decoding validates everything a worker relies
on: a known machine, a time zone on the timestamp, finite numbers, no negative energy. A
failure raises `InvalidRecord` with the field that failed, so the dead-letter record and the
HTTP 422 can both say exactly what was wrong.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, ClassVar

import msgspec

from schemas.jsondepth import MAX_DEPTH, too_deep
from schemas.machines import machine_by_id
from schemas.types import TZDateTime

NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]

#: Longest reason text kept (reasons go into 422 bodies and dead letters).
_MAX_REASON = 300

_OPTIONAL_DRIVERS = (
    "production_count",
    "throughput_units_per_hour",
    "outdoor_temp_c",
    "machine_temp_c",
    "pressure_bar",
)


class InvalidRecord(ValueError):
    """A record that cannot be processed; `field` names what failed (``$`` = the whole record).

    Parameters
    ----------
    reason
        What is wrong, for a person.
    field
        The failing field, as a path (``power_kw``, ``timestamp``), or ``$``.
    """

    def __init__(self, reason: str, field: str = "$") -> None:
        if len(reason) > _MAX_REASON:  # a reason may quote the input; the input may be huge
            reason = reason[:_MAX_REASON] + "…"
        super().__init__(reason)
        self.reason = reason
        self.field = field


class Reading(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """One meter reading of one machine (namespace ``enms.reading``, ``schema_version`` 1).

    Examples
    --------
    >>> r = decode_reading(b'{"machine_id": "c0000000-0000-0000-0000-000000000001",'
    ...                    b' "timestamp": "2026-01-05T08:00:00+00:00",'
    ...                    b' "power_kw": 41.5, "energy_kwh": 0.0115}')
    >>> r.power_kw, r.timestamp.tzinfo is not None
    (41.5, True)
    """

    NAMESPACE: ClassVar[str] = "enms.reading"

    machine_id: str
    timestamp: TZDateTime
    power_kw: NonNegative
    energy_kwh: NonNegative
    production_count: NonNegative | None = None
    throughput_units_per_hour: NonNegative | None = None
    outdoor_temp_c: float | None = None
    machine_temp_c: float | None = None
    pressure_bar: NonNegative | None = None
    schema_version: int = 1

    def drivers(self) -> dict[str, float]:
        """The optional drivers that are present, by name."""
        out: dict[str, float] = {}
        for name in _OPTIONAL_DRIVERS:
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        return out


_decoder = msgspec.json.Decoder(Reading)
_PATH_MARK = " - at `$."


def _split_msgspec_error(e: msgspec.ValidationError) -> tuple[str, str]:
    """('Expected `float`, got `str`', 'power_kw') from msgspec's message."""
    msg = str(e)
    if _PATH_MARK in msg:
        reason, _, path = msg.partition(_PATH_MARK)
        return reason, path.rstrip("`")
    if msg.startswith("Object missing required field `"):
        return msg, msg.split("`")[1]
    return msg, "$"


def _check(r: Reading) -> Reading:
    for name in ("power_kw", "energy_kwh", *_OPTIONAL_DRIVERS):
        v = getattr(r, name)
        if v is not None and not math.isfinite(v):
            msg = f"{name} must be a finite number, got {v}"
            raise InvalidRecord(msg, name)
    if machine_by_id(r.machine_id) is None:
        msg = f"unknown machine_id {r.machine_id[:80]!r}"
        raise InvalidRecord(msg, "machine_id")
    if r.schema_version != 1:
        msg = f"unsupported schema_version {r.schema_version} (this worker reads 1)"
        raise InvalidRecord(msg, "schema_version")
    return r


def decode_reading(raw: bytes | bytearray | memoryview | str | None, *,
                   max_bytes: int | None = None) -> Reading:
    """Decode and validate one reading from JSON; raise `InvalidRecord` on any fault.

    Whatever the bytes (None for a Kafka tombstone, empty, not UTF-8, deeply nested, larger
    than ``max_bytes``, JSON of the wrong shape), the only exception is `InvalidRecord`.

    Examples
    --------
    >>> decode_reading(b'{"machine_id": "x"')
    Traceback (most recent call last):
    ...
    schemas.readings.InvalidRecord: malformed JSON: ...
    >>> try:
    ...     decode_reading(b'{"machine_id": "c0000000-0000-0000-0000-000000000001",'
    ...                    b' "timestamp": "2026-01-05T08:00:00Z", "power_kw": "high",'
    ...                    b' "energy_kwh": 1}')
    ... except InvalidRecord as e:
    ...     print(e.field, "|", e.reason)
    power_kw | Expected `float`, got `str`
    >>> for raw in (None, b"", b'{"note": ' + b"[" * 5000 + b"]" * 5000 + b"}"):
    ...     try:
    ...         decode_reading(raw)
    ...     except InvalidRecord as e:
    ...         print(e.field, "|", e.reason)
    $ | null value (a Kafka tombstone); a reading is a JSON object
    $ | empty value; a reading is a JSON object
    note[0][0][0] | JSON nested deeper than 32 levels
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    elif isinstance(raw, memoryview):
        raw = raw.tobytes()
    if raw is None or not raw:
        raise _missing(raw, "a reading")  # the same words for every record
    if max_bytes is not None and len(raw) > max_bytes:
        msg = f"a record of {len(raw)} bytes; a reading is at most {max_bytes} bytes"
        raise InvalidRecord(msg)
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:  # else it cannot nest that deep
        _check_depth(bytes(raw))
    try:
        return _check(_decoder.decode(raw))
    except msgspec.ValidationError as e:
        reason, field = _split_msgspec_error(e)
        raise InvalidRecord(reason, field) from e
    except UnicodeDecodeError as e:  # msgspec raises it for a string that is not UTF-8
        raise _not_utf8(e) from e
    except msgspec.DecodeError:
        # Strict JSON has no NaN/Infinity, but Python's json.dumps writes them. Parse those
        # leniently so that the error names the field instead of "malformed JSON".
        return convert_reading(_parse_json(raw))
    except RecursionError as e:  # not expected after _check_depth; never let it through
        msg = "JSON nested too deeply"
        raise InvalidRecord(msg) from e


def decode_record(decoder: msgspec.json.Decoder[Any], raw: bytes | None, what: str) -> Any:
    """Decode a record of any type strictly; raise `InvalidRecord` (never anything else) on
    a null or empty value, deep nesting or a shape that does not fit."""
    if raw is None or not raw:
        raise _missing(raw, what)
    _check_depth(bytes(raw))
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as e:
        reason, field = _split_msgspec_error(e)
        raise InvalidRecord(reason, field) from e
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as e:
        msg = f"malformed JSON: {e}"
        raise InvalidRecord(msg) from e


def _missing(raw: object, what: str) -> InvalidRecord:
    """The error of a null (a Kafka tombstone) or empty value."""
    if raw is None:
        return InvalidRecord(f"null value (a Kafka tombstone); {what} is a JSON object")
    return InvalidRecord(f"empty value; {what} is a JSON object")


def _not_utf8(e: UnicodeDecodeError) -> InvalidRecord:
    return InvalidRecord(f"not UTF-8: {e.reason} at byte {e.start} of a string")


def _check_depth(raw: bytes) -> None:
    place = too_deep(raw, MAX_DEPTH)
    if place is not None:
        msg = f"JSON nested deeper than {MAX_DEPTH} levels"
        raise InvalidRecord(msg, place)


def _parse_json(raw: bytes | bytearray | memoryview) -> Any:
    """Parse JSON fast (msgspec), accepting the NaN/Infinity tokens (json) as a fallback.

    The caller has checked the depth (`_check_depth`)."""
    try:
        return msgspec.json.decode(raw)
    except UnicodeDecodeError as e:
        raise _not_utf8(e) from e
    except msgspec.DecodeError as e:
        try:
            return json.loads(bytes(raw))
        except (ValueError, UnicodeDecodeError, RecursionError):
            msg = f"malformed JSON: {e}"
            raise InvalidRecord(msg) from e
    except RecursionError as e:
        msg = "JSON nested too deeply"
        raise InvalidRecord(msg) from e


def convert_reading(obj: Any) -> Reading:
    """Validate an already-parsed JSON object (one item of a REST batch)."""
    try:
        return _check(msgspec.convert(obj, Reading))
    except msgspec.ValidationError as e:
        reason, field = _split_msgspec_error(e)
        raise InvalidRecord(reason, field) from e


def decode_readings_batch(raw: bytes) -> list[Reading]:
    """Decode a JSON array (or ``{"readings": [...]}``) of readings, all or nothing.

    Raises `InvalidRecord` whose `field` carries the index: ``[3].power_kw``.

    Examples
    --------
    >>> decode_readings_batch(b'[]')
    []
    >>> try:
    ...     decode_readings_batch(b'[{"machine_id": "c0000000-0000-0000-0000-000000000001",'
    ...                           b' "timestamp": "2026-01-05T08:00:00", "power_kw": 1,'
    ...                           b' "energy_kwh": 1}]')
    ... except InvalidRecord as e:
    ...     print(e.field, "|", e.reason)
    [0].timestamp | Expected `datetime` with a timezone component
    """
    _check_depth(raw)
    body = _parse_json(raw)
    if isinstance(body, dict) and "readings" in body:
        body = body["readings"]
    if not isinstance(body, list):
        msg = "expected a JSON array of readings (or {\"readings\": [...]})"
        raise InvalidRecord(msg)
    out: list[Reading] = []
    for i, item in enumerate(body):
        try:
            out.append(convert_reading(item))
        except InvalidRecord as e:
            raise InvalidRecord(e.reason, f"[{i}].{e.field}".replace(".$", "")) from e
    return out


def encode_reading(r: Reading) -> bytes:
    """JSON bytes of a reading, as it travels on ``enms.readings``."""
    return msgspec.json.encode(r)
