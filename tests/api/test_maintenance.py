"""api/maintenance.py over in-memory ports: record, read and end a machine's window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.events import MaintenanceWindow
from streams.topics import MAINTENANCE
from tests.api.fakes import M1, Client, Fakes

PATH = f"/api/v1/machines/{M1}/maintenance"


async def test_a_machine_without_a_window(client: Client) -> None:
    resp = await client.get(PATH)
    assert resp.status == 200
    assert await resp.json() == {"machine_id": M1, "machine_name": "Compressor-1",
                                 "in_maintenance": False, "window": None}


async def test_put_records_a_window_that_get_then_shows(client: Client, fakes: Fakes) -> None:
    end = (datetime.now(UTC) + timedelta(hours=4)).replace(microsecond=0)
    resp = await client.put(PATH, json={"end": end.isoformat(), "reason": "belt change"})
    assert resp.status == 200
    body = await resp.json()
    assert body["in_maintenance"] is True
    assert (body["window"]["end"], body["window"]["reason"]) == (end.isoformat(), "belt change")
    [w] = fakes.publisher.records(MAINTENANCE)
    assert isinstance(w, MaintenanceWindow)
    assert (w.machine_id, w.end, w.reason, w.event_id) == (M1, end, "belt change",
                                                           body["window"]["id"])
    assert datetime.now(UTC) - w.start < timedelta(seconds=10)  # start: now
    assert fakes.publisher.keys(MAINTENANCE) == [M1.encode()]
    assert await (await client.get(PATH)).json() == body


async def test_a_planned_window_is_not_in_maintenance_yet(client: Client) -> None:
    start = datetime.now(UTC) + timedelta(days=1)
    resp = await client.put(PATH, json={"start": start.isoformat(),
                                        "end": (start + timedelta(hours=2)).isoformat()})
    assert resp.status == 200
    body = await resp.json()
    assert body["in_maintenance"] is False and body["window"]["reason"] == ""


async def test_delete_ends_the_open_window_now(client: Client, fakes: Fakes) -> None:
    now = datetime.now(UTC)
    fakes.maintenance.add(MaintenanceWindow(event_id="w1", occurred_at=now, machine_id=M1,
                                            start=now - timedelta(hours=1),
                                            end=now + timedelta(hours=3), reason="inspection"))
    resp = await client.delete(PATH)
    assert resp.status == 200
    body = await resp.json()
    [ended] = fakes.publisher.records(MAINTENANCE)
    assert (ended.start, ended.reason) == (now - timedelta(hours=1), "inspection")
    assert now <= ended.end <= datetime.now(UTC)
    assert body["in_maintenance"] is False and body["window"]["id"] == ended.event_id
    again = await client.delete(PATH)  # the window just ended: nothing open any more
    assert again.status == 404
    assert await again.json() == {
        "detail": "Compressor-1 has no open or planned maintenance window"}


async def test_delete_cancels_a_planned_window(client: Client, fakes: Fakes) -> None:
    now = datetime.now(UTC)
    start = now + timedelta(days=2)
    fakes.maintenance.add(MaintenanceWindow(event_id="w1", occurred_at=now, machine_id=M1,
                                            start=start, end=start + timedelta(hours=3)))
    assert (await client.delete(PATH)).status == 200
    [cancelled] = fakes.publisher.records(MAINTENANCE)
    assert cancelled.start == cancelled.end == start


async def test_put_checks_its_window(client: Client, fakes: Fakes) -> None:
    cases = [({}, ["body", "end"]),
             ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, ["body", "end"]),
             ({"start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, ["body", "end"]),
             ({"end": "tomorrow"}, ["body", "end"])]
    for body, loc in cases:
        resp = await client.put(PATH, json=body)
        assert resp.status == 422, body
        assert (await resp.json())["detail"][0]["loc"] == loc
    unknown = await client.get("/api/v1/machines/nope/maintenance")
    assert unknown.status == 404
    assert fakes.publisher.sent == []
