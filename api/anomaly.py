"""Anomalies: batch detection over a period, and the anomaly log (recent, search, active,
resolve), as in the old contract."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypedDict, cast

from aiohttp import web

from api.context import anomalies, history, publish, registry
from api.errors import bad_request, json_object, json_response, not_found, unprocessable
from api.params import machine_param, text_param, time_param, window
from detectors.batch import BatchAnomaly, detect_window
from detectors.hourly import hourly_records
from detectors.registry import Anomaly
from schemas.energy import EnergyHourly
from schemas.events import AnomalyDetected, AnomalyResolved, Severity, stable_event_id
from schemas.machines import machine_by_id
from schemas.readings import Reading
from streams.topics import ANOMALIES

routes = web.RouteTableDef()
PREFIX = "/api/v1/anomaly"
SEVERITIES = ("critical", "warning", "normal")
#: Longest period /detect takes (it reads every reading of the period and its reference
#: back from Kafka: a month of a 1-second compressor is 2.6 million readings).
LONGEST_DETECT = timedelta(days=31)
#: Longest period the anomaly log is searched over.
LONGEST_SEARCH = timedelta(days=366)


def row_json(a: Anomaly) -> dict[str, object]:
    """One anomaly as the old clients read a row, plus its explanation and detector."""
    e = a.event
    m = machine_by_id(e.machine_id or "")
    return {"id": e.event_id, "machine_id": e.machine_id, "machine_name": e.machine_name,
            "machine_type": m.type if m else None, "detected_at": e.timestamp.isoformat(),
            "anomaly_type": e.anomaly_type, "severity": e.severity, "metric_name": e.metric,
            "metric_value": e.value, "expected_value": e.expected_value,
            "deviation_percent": e.deviation_percent, "deviation_std_dev": e.anomaly_score,
            "confidence_score": e.score, "detection_method": e.detector,
            "explanation": e.explanation, "is_resolved": a.resolved_at is not None,
            "resolved_at": a.resolved_at and a.resolved_at.isoformat(),
            "resolution_notes": a.resolution_notes}


@routes.post(f"{PREFIX}/detect")
async def detect(request: web.Request) -> web.Response:
    """Isolation Forest over a period's hours, fitted on a reference period before it."""
    body = await json_object(request)
    machine = machine_param(body.get("machine_id"), "body")
    start = time_param(body.get("start"), "start", "body")
    end = time_param(body.get("end"), "end", "body")
    if start is None or end is None:
        raise unprocessable("start" if start is None else "end", "field required")
    window(start, end, LONGEST_DETECT, "end", "body")
    c = body.get("contamination")
    contamination = 0.1 if c is None else c
    if isinstance(contamination, bool) or not isinstance(contamination, int | float) or \
            not 0 < contamination <= 0.5:
        raise unprocessable("contamination", "must be a number in (0, 0.5]")
    use_baseline = body.get("use_baseline", True)
    if not isinstance(use_baseline, bool):
        raise unprocessable("use_baseline", "must be true or false")
    ref_days = body.get("reference_days", 7)
    if isinstance(ref_days, bool) or not isinstance(ref_days, int | float) or \
            not 1 <= ref_days <= 90:
        raise unprocessable("reference_days", "must be a number of days from 1 to 90")
    ref_start = start - timedelta(days=ref_days)
    readings = await history(request).readings(machine.id, ref_start, end)
    # Aggregating (a month of a 1-second meter is 2.6 million readings) and fitting the
    # forest take seconds of CPU: in a thread, so that the loop serves other requests.
    ref_rows, win_rows = await asyncio.to_thread(_hours, readings, start)
    if not win_rows:
        raise bad_request(
            f"no readings of {machine.id} between {start.isoformat()} and {end.isoformat()}")
    model = (await registry(request)).registry.active_model(machine.id) if use_baseline \
        else None
    try:
        found = await asyncio.to_thread(detect_window, ref_rows, win_rows,
                                        contamination=float(contamination), baseline=model)
    except ValueError as problem:
        raise bad_request(str(problem)) from problem
    log = await anomalies(request)
    events = [_event(a, machine.id, machine.name) for a in found]
    new = [e for e in events if e.event_id not in log.anomalies.by_id]
    for event in new:
        await publish(request, ANOMALIES, machine.id, event)
    if new:  # so that an identical call right after sees them as saved
        ids = {e.event_id for e in new}
        try:
            await log.wait_for(lambda: ids <= log.anomalies.by_id.keys(), 10)
        except TimeoutError:
            pass
    return json_response({
        "machine_id": machine.id, "machine_name": machine.name,
        "detection_period": {"start": start.isoformat(), "end": end.isoformat()},
        "reference_period": {"start": ref_start.isoformat(), "end": start.isoformat(),
                             "hours": len(ref_rows)},
        "baseline_model_version": model.version if model else None,
        "total_data_points": len(win_rows), "anomalies_detected": len(events),
        "anomalies_saved": len(new), "contamination": contamination,
        "anomalies": [{"id": e.event_id, "detected_at": e.timestamp.isoformat(),
                       "anomaly_type": e.anomaly_type, "severity": e.severity,
                       "metric_name": e.metric, "metric_value": e.value,
                       "expected_value": e.expected_value,
                       "deviation_percent": e.deviation_percent,
                       "confidence_score": e.score, "explanation": e.explanation}
                      for e in events]})


def _hours(readings: Sequence[Reading], start: datetime,
           ) -> tuple[list[EnergyHourly], list[EnergyHourly]]:
    """Hourly rows of the reference (before ``start``) and of the window (from it)."""
    return (list(hourly_records(r for r in readings if r.timestamp < start)),
            list(hourly_records(r for r in readings if r.timestamp >= start)))


def _event(a: BatchAnomaly, machine_id: str, machine_name: str) -> AnomalyDetected:
    """The event of one flagged hour."""
    t = a.row.hour_start
    dev = 100.0 * (a.value - a.expected) / a.expected if a.expected else None
    return AnomalyDetected(
        event_id=stable_event_id("anomaly_detected", machine_id, t.isoformat(), "iforest"),
        occurred_at=t, machine_id=machine_id, machine_name=machine_name, timestamp=t,
        metric=a.feature, value=round(a.value, 4), expected_value=round(a.expected, 4),
        deviation_percent=None if dev is None else round(dev, 2), score=a.confidence,
        threshold=round(a.threshold, 4), anomaly_score=round(a.z, 3),
        # detect_window grades "critical" or "warning", the event's Severity values
        severity=cast(Severity, a.severity),
        anomaly_type=a.anomaly_type, detector="iforest",
        explanation=(f"{a.feature} {a.value:.3g} vs {a.expected:.3g} in the reference "
                     f"({a.z:+.1f} robust σ); energy impact {a.energy_impact_kwh:+.3g} kWh "
                     f"in the hour; isolation score {a.score:.3f} (threshold "
                     f"{a.threshold:.3f})"))


class _Filters(TypedDict):
    machine_id: str | None
    severity: str | None
    start: datetime
    end: datetime | None
    limit: int


def _filters(request: web.Request, default_days: int, max_limit: int) -> _Filters:
    q = request.query
    machine_id = q.get("machine_id") or None
    if machine_id is not None:
        machine_param(machine_id)
    severity = q.get("severity") or None
    if severity is not None and severity not in SEVERITIES:
        raise unprocessable("severity", f"must be one of {', '.join(SEVERITIES)}", "query")
    try:
        limit = int(q.get("limit", "50"))
    except ValueError as e:
        raise unprocessable("limit", "must be a whole number", "query") from e
    if not 1 <= limit <= max_limit:
        raise unprocessable("limit", f"must be between 1 and {max_limit}", "query")
    end = time_param(q.get("end_time"), "end_time")
    start = time_param(q.get("start_time"), "start_time")
    if start is None:
        start = (end or datetime.now(UTC)) - timedelta(days=default_days)
    window(start, end or max(start + timedelta(seconds=1), datetime.now(UTC)), LONGEST_SEARCH,
           "start_time" if end is None else "end_time")
    return {"machine_id": machine_id, "severity": severity, "start": start, "end": end,
            "limit": limit}


def _listing(rows: list[Anomaly], filters: Mapping[str, object]) -> web.Response:
    shown = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in filters.items()}
    return json_response({"total_count": len(rows), "filters": shown,
                          "anomalies": [row_json(a) for a in rows]})


@routes.get(f"{PREFIX}/recent")
async def recent(request: web.Request) -> web.Response:
    """Newest first; default the last 7 days (of event time), at most 200."""
    f = _filters(request, 7, 200)
    return _listing((await anomalies(request)).anomalies.query(**f), f)


@routes.get(f"{PREFIX}/search")
async def search(request: web.Request) -> web.Response:
    """As recent, plus ``is_resolved``; default 30 days, at most 500."""
    f = _filters(request, 30, 500)
    r = request.query.get("is_resolved")
    if r is not None and r.lower() not in {"true", "false"}:
        raise unprocessable("is_resolved", "must be true or false", "query")
    resolved = None if r is None else r.lower() == "true"
    rows = (await anomalies(request)).anomalies.query(**f, resolved=resolved)
    return _listing(rows, {**f, "resolved": resolved})


@routes.get(f"{PREFIX}/active")
async def active(request: web.Request) -> web.Response:
    """Unresolved anomalies with counts by severity."""
    machine_id = request.query.get("machine_id") or None
    if machine_id is not None:
        machine_param(machine_id)
    rows = (await anomalies(request)).anomalies.query(machine_id=machine_id, resolved=False,
                                                      limit=10_000)
    by = dict.fromkeys(SEVERITIES, 0)
    for a in rows:
        by[a.event.severity] = by.get(a.event.severity, 0) + 1
    return json_response({"total_count": len(rows), "by_severity": by,
                          "anomalies": [row_json(a) for a in rows[:500]]})


@routes.put(f"{PREFIX}/{{anomaly_id}}/resolve")
async def resolve(request: web.Request) -> web.Response:
    """Record a resolution as an event; 404 for an unknown id."""
    log = await anomalies(request)
    aid = request.match_info["anomaly_id"]
    a = log.anomalies.by_id.get(aid)
    if a is None:
        raise not_found(f"anomaly {aid} not found")
    body = await json_object(request, empty_ok=True)
    notes = text_param(body.get("resolution_notes"), "resolution_notes", "body")
    now = datetime.now(UTC)
    e = AnomalyResolved(event_id=stable_event_id("anomaly_resolved", aid, now.isoformat()),
                        occurred_at=now, machine_id=a.event.machine_id, anomaly_id=aid,
                        resolution_notes=notes)
    await publish(request, ANOMALIES, a.event.machine_id or "", e)
    try:
        await log.wait_for(lambda: log.anomalies.by_id[aid].resolved_at is not None, 10)
    except TimeoutError:
        pass
    return json_response({"id": aid, "machine_id": a.event.machine_id,
                          "anomaly_type": a.event.anomaly_type, "severity": a.event.severity,
                          "detected_at": a.event.timestamp.isoformat(),
                          "resolved_at": now.isoformat(), "resolution_notes": notes})
