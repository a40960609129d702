"""Maintenance windows: while a machine is serviced its readings are not judged.

``PUT`` records a window (``start`` defaults to now, ``end`` is required), ``DELETE`` ends the
open one now or cancels a planned one, ``GET`` shows the machine's latest window. A window is an event on the
compacted ``enms.maintenance`` (one per machine); every worker folds the topic and skips
judging and learning for readings whose time falls in their machine's window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from api.context import maintenance, publish
from api.errors import json_object, json_response, not_found, unprocessable
from api.params import machine_param, text_param, time_param, window
from schemas.events import MaintenanceWindow, stable_event_id
from streams.topics import MAINTENANCE

routes = web.RouteTableDef()
PATH = "/api/v1/machines/{machine_id}/maintenance"
#: A window longer than this is almost certainly a typo (a year instead of a day).
LONGEST = timedelta(days=31)


def _json(machine_id: str, name: str, w: MaintenanceWindow | None) -> dict[str, object]:
    now = datetime.now(UTC)
    return {"machine_id": machine_id, "machine_name": name,
            "in_maintenance": bool(w and w.covers(now)),
            "window": None if w is None else {"start": w.start.isoformat(),
                                              "end": w.end.isoformat(), "reason": w.reason,
                                              "id": w.event_id}}


@routes.get(PATH)
async def get_window(request: web.Request) -> web.Response:
    """The machine's latest maintenance window (null when it never had one)."""
    machine = machine_param(request.match_info["machine_id"], "path")
    w = (await maintenance(request)).maintenance.window(machine.id)
    return json_response(_json(machine.id, machine.name, w))


@routes.put(PATH)
async def put_window(request: web.Request) -> web.Response:
    """Record a window: ``{"end": ..., "start"?: now, "reason"?: ""}``."""
    machine = machine_param(request.match_info["machine_id"], "path")
    body = await json_object(request)
    now = datetime.now(UTC)
    start = time_param(body.get("start"), "start", "body") or now
    end = time_param(body.get("end"), "end", "body")
    if end is None:
        raise unprocessable("end", "field required", "body")
    window(start, end, LONGEST, "end", "body")
    reason = text_param(body.get("reason"), "reason", "body")
    w = MaintenanceWindow(
        event_id=stable_event_id("maintenance_window", machine.id, start.isoformat(),
                                 end.isoformat(), reason),
        occurred_at=now, machine_id=machine.id, start=start, end=end, reason=reason)
    await publish(request, MAINTENANCE, machine.id, w)
    return json_response(_json(machine.id, machine.name, w))


@routes.delete(PATH)
async def end_window(request: web.Request) -> web.Response:
    """End the machine's open window now, or cancel a planned one (its end becomes its
    start); 404 when there is neither."""
    machine = machine_param(request.match_info["machine_id"], "path")
    w = (await maintenance(request)).maintenance.window(machine.id)
    now = datetime.now(UTC)
    if w is None or w.end <= now or w.end <= w.start:
        raise not_found(f"{machine.name} has no open or planned maintenance window")
    ended = MaintenanceWindow(
        event_id=stable_event_id("maintenance_window", machine.id, w.event_id, "ended",
                                 now.isoformat()),
        occurred_at=now, machine_id=machine.id, start=w.start, end=max(w.start, now),
        reason=w.reason)
    await publish(request, MAINTENANCE, machine.id, ended)
    return json_response(_json(machine.id, machine.name, ended))
