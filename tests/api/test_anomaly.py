"""api/anomaly.py over in-memory ports: batch detection on a history, the anomaly log's
listings and resolutions, and detection off the event loop."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

import api.anomaly
from api.app import create_app
from api.ports import ReadModels
from schemas.events import AnomalyDetected, AnomalyResolved, ModelActivated, ModelTrained
from streams.settings import Settings
from streams.topics import ANOMALIES
from tests.api.fakes import (
    M1,
    Client,
    FakeHistory,
    Fakes,
    anomaly_event,
    baseline_model,
    synthetic_readings,
)

M2 = "c0000000-0000-0000-0000-000000000002"
M3 = "c0000000-0000-0000-0000-000000000003"  # Motor-Line-A
START, END = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC)
SPIKE = datetime(2026, 1, 5, 22, tzinfo=UTC)
DETECT = {"machine_id": M3, "start": START.isoformat(), "end": END.isoformat()}
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def fakes() -> Fakes:
    """A week of reference and the day of detection of Motor-Line-A, a spike at 22:00."""
    readings = synthetic_readings(M3, START - timedelta(days=7), END, spike_at=SPIKE)
    return Fakes(history=FakeHistory(readings))


# -- detect ----------------------------------------------------------------------------------


async def test_detect_flags_the_spike_and_publishes_it_once(client: Client, fakes: Fakes) -> None:
    resp = await client.post("/api/v1/anomaly/detect", json=DETECT)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert fakes.history.asked == [("readings", M3, START - timedelta(days=7), END)]
    assert body["machine_name"] == "Motor-Line-A"
    assert body["reference_period"] == {"start": (START - timedelta(days=7)).isoformat(),
                                        "end": START.isoformat(), "hours": 7 * 24}
    assert (body["total_data_points"], body["baseline_model_version"]) == (24, None)
    assert [(a["detected_at"], a["anomaly_type"], a["metric_name"]) for a in body["anomalies"]] \
        == [(SPIKE.isoformat(), "spike", "mean_power_kw")]
    assert (body["anomalies_detected"], body["anomalies_saved"]) == (1, 1)
    published = fakes.publisher.records(ANOMALIES)
    assert [type(e) for e in published] == [AnomalyDetected]
    event = published[0]
    assert (event.event_id, event.detector, event.timestamp) == (
        body["anomalies"][0]["id"], "iforest", SPIKE)
    assert fakes.publisher.keys(ANOMALIES) == [M3.encode()]
    assert event.event_id in fakes.anomalies.anomalies.by_id  # folded back: saved

    again = await (await client.post("/api/v1/anomaly/detect", json=DETECT)).json()
    assert (again["anomalies_detected"], again["anomalies_saved"]) == (1, 0)
    assert [a["id"] for a in again["anomalies"]] == [event.event_id]  # a stable id
    assert len(fakes.publisher.records(ANOMALIES)) == 1


async def test_detect_uses_the_active_baseline(client: Client, fakes: Fakes) -> None:
    fakes.registry.add(
        ModelTrained(event_id="t1", occurred_at=NOW, machine_id=M3, model_type="baseline",
                     version=1, model=baseline_model(M3, 1)),
        ModelActivated(event_id="a1", occurred_at=NOW, machine_id=M3, model_type="baseline",
                       version=1, model_id="model-v1"))
    body = await (await client.post("/api/v1/anomaly/detect", json=DETECT)).json()
    assert body["baseline_model_version"] == 1
    without = await (await client.post("/api/v1/anomaly/detect",
                                       json={**DETECT, "use_baseline": False})).json()
    assert without["baseline_model_version"] is None


async def test_detect_without_readings_in_the_period_is_400(client: Client, fakes: Fakes) -> None:
    resp = await client.post("/api/v1/anomaly/detect", json={**DETECT, "machine_id": M1})
    assert resp.status == 400
    assert await resp.json() == {"detail": f"no readings of {M1} between "
                                           f"{START.isoformat()} and {END.isoformat()}"}
    assert fakes.publisher.sent == []


async def test_detect_with_too_short_a_reference_is_400(client: Client, fakes: Fakes) -> None:
    fakes.history.stored_readings = synthetic_readings(M3, START - timedelta(hours=5), END)
    resp = await client.post("/api/v1/anomaly/detect", json=DETECT)
    assert resp.status == 400
    assert "at least 24 are needed" in (await resp.json())["detail"]


async def test_detect_with_history_unreachable_is_503(client: Client, fakes: Fakes) -> None:
    fakes.history.down = True
    resp = await client.post("/api/v1/anomaly/detect", json=DETECT)
    assert resp.status == 503 and resp.headers["Retry-After"] == "5"
    assert "KafkaConnectionError" in (await resp.json())["detail"]


@pytest.mark.parametrize(("field", "value"), [
    ("contamination", 0.9), ("use_baseline", "yes"), ("reference_days", 0),
    ("reference_days", True)])
async def test_detect_checks_its_options(client: Client, fakes: Fakes, field: str,
                                         value: object) -> None:
    resp = await client.post("/api/v1/anomaly/detect", json={**DETECT, field: value})
    assert resp.status == 422
    assert (await resp.json())["detail"][0]["loc"] == ["body", field]
    assert fakes.history.asked == []


# -- detect off the loop ---------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["aggregation", "fit"])
async def test_health_is_answered_while_a_detect_works(
        client: Client, fakes: Fakes, monkeypatch: pytest.MonkeyPatch, stage: str) -> None:
    """The detect's CPU work waits on a gate in its thread; /health answers meanwhile. Were
    the work on the event loop, the loop would wait there (for at most 10 s): the detect
    would finish first."""
    entered, gate = threading.Event(), threading.Event()
    if stage == "aggregation":  # the readings wait when iterated
        fakes.history.gate = (entered, gate)
    else:
        fit = api.anomaly.detect_window

        def gated_fit(*args: Any, **kwargs: Any) -> Any:
            entered.set()
            gate.wait(10)
            return fit(*args, **kwargs)

        monkeypatch.setattr(api.anomaly, "detect_window", gated_fit)
    outcomes: list[str] = []
    detect = asyncio.create_task(client.post("/api/v1/anomaly/detect", json=DETECT))
    detect.add_done_callback(lambda _: outcomes.append("detect"))
    assert await asyncio.to_thread(entered.wait, 10)
    health = await client.get("/health")
    outcomes.append(f"health {health.status}")
    gate.set()
    resp = await detect
    assert outcomes == ["health 200", "detect"]
    assert resp.status == 200
    assert (await resp.json())["anomalies_detected"] == 1
    if stage == "aggregation":  # and the readings were gone through in a worker thread
        threads = {t for g in fakes.history.served for t in g.threads}
        assert threads and threading.main_thread().name not in threads


# -- the log ---------------------------------------------------------------------------------


def _seed(fakes: Fakes) -> None:
    fakes.anomalies.add(
        anomaly_event("a1", M1, NOW - timedelta(hours=1)),
        anomaly_event("a2", M1, NOW - timedelta(days=3), severity="warning", value=50.0),
        anomaly_event("a3", M2, NOW - timedelta(days=10)),
        AnomalyResolved(event_id="r2", occurred_at=NOW - timedelta(days=2), machine_id=M1,
                        anomaly_id="a2", resolution_notes="belt replaced"))


async def ids(client: Client, path: str) -> list[str]:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    return [a["id"] for a in (await resp.json())["anomalies"]]


async def test_recent_is_the_last_7_days_newest_first_filtered(client: Client,
                                                               fakes: Fakes) -> None:
    _seed(fakes)
    assert await ids(client, "/api/v1/anomaly/recent") == ["a1", "a2"]
    assert await ids(client, "/api/v1/anomaly/recent?severity=critical") == ["a1"]
    assert await ids(client, f"/api/v1/anomaly/recent?machine_id={M2}") == []
    assert await ids(client, "/api/v1/anomaly/recent?limit=1") == ["a1"]
    body = await (await client.get(f"/api/v1/anomaly/recent?machine_id={M1}")).json()
    assert body["total_count"] == 2
    assert body["filters"]["machine_id"] == M1 and body["filters"]["limit"] == 50
    row = body["anomalies"][1]
    assert row == {
        "id": "a2", "machine_id": M1, "machine_name": "Compressor-1",
        "machine_type": "compressor", "detected_at": (NOW - timedelta(days=3)).isoformat(),
        "anomaly_type": "spike", "severity": "warning", "metric_name": "power_kw",
        "metric_value": 50.0, "expected_value": 20.0, "deviation_percent": 300.0,
        "deviation_std_dev": 9.0, "confidence_score": 0.99, "detection_method": "hst",
        "explanation": "", "is_resolved": True,
        "resolved_at": (NOW - timedelta(days=2)).isoformat(),
        "resolution_notes": "belt replaced"}


async def test_search_takes_30_days_and_the_resolution(client: Client, fakes: Fakes) -> None:
    _seed(fakes)
    assert await ids(client, "/api/v1/anomaly/search") == ["a1", "a2", "a3"]
    assert await ids(client, "/api/v1/anomaly/search?is_resolved=true") == ["a2"]
    assert await ids(client, "/api/v1/anomaly/search?is_resolved=false") == ["a1", "a3"]
    body = await (await client.get("/api/v1/anomaly/search?is_resolved=false")).json()
    assert body["filters"]["resolved"] is False
    bad = await client.get("/api/v1/anomaly/search?is_resolved=maybe")
    assert bad.status == 422
    assert (await bad.json())["detail"][0]["loc"] == ["query", "is_resolved"]


async def test_active_counts_the_unresolved_by_severity(client: Client, fakes: Fakes) -> None:
    _seed(fakes)
    body = await (await client.get("/api/v1/anomaly/active")).json()
    assert body["total_count"] == 2
    assert body["by_severity"] == {"critical": 2, "warning": 0, "normal": 0}
    assert [a["id"] for a in body["anomalies"]] == ["a1", "a3"]
    mine = await (await client.get(f"/api/v1/anomaly/active?machine_id={M2}")).json()
    assert [a["id"] for a in mine["anomalies"]] == ["a3"]
    assert (await client.get("/api/v1/anomaly/active?machine_id=nope")).status == 404


async def test_resolve_publishes_the_resolution_and_the_log_shows_it(
        client: Client, fakes: Fakes) -> None:
    _seed(fakes)
    resp = await client.put("/api/v1/anomaly/a1/resolve",
                            json={"resolution_notes": "sensor re-seated"})
    assert resp.status == 200
    body = await resp.json()
    assert (body["id"], body["machine_id"], body["resolution_notes"]) == (
        "a1", M1, "sensor re-seated")
    [event] = fakes.publisher.records(ANOMALIES)
    assert isinstance(event, AnomalyResolved)
    assert (event.anomaly_id, event.resolution_notes) == ("a1", "sensor re-seated")
    assert event.occurred_at.isoformat() == body["resolved_at"]
    assert fakes.publisher.keys(ANOMALIES) == [M1.encode()]
    assert await ids(client, "/api/v1/anomaly/search?is_resolved=false") == ["a3"]


async def test_resolve_takes_an_empty_body_and_refuses_unknown_ids(
        client: Client, fakes: Fakes) -> None:
    _seed(fakes)
    resp = await client.put("/api/v1/anomaly/a3/resolve")
    assert resp.status == 200 and (await resp.json())["resolution_notes"] == ""
    missing = await client.put("/api/v1/anomaly/nope/resolve")
    assert missing.status == 404
    assert await missing.json() == {"detail": "anomaly nope not found"}
    long = await client.put("/api/v1/anomaly/a1/resolve", json={"resolution_notes": "x" * 1001})
    assert long.status == 422
    assert (await long.json())["detail"][0]["loc"] == ["body", "resolution_notes"]
    assert len(fakes.publisher.sent) == 1


async def test_the_log_without_its_view_is_503(aiohttp_client: AiohttpClient,
                                               fakes: Fakes) -> None:
    deps = fakes.deps()
    deps.read_models = ReadModels()  # a process without views of Kafka
    client = await aiohttp_client(create_app(Settings(), deps))
    for path in ("/api/v1/anomaly/recent", "/api/v1/anomaly/active"):
        resp = await client.get(path)
        assert resp.status == 503 and resp.headers["Retry-After"] == "5"
        assert await resp.json() == {"detail": "anomaly log not available yet"}


async def test_a_view_that_catches_up_late_is_waited_for(client: Client, fakes: Fakes) -> None:
    fakes.anomalies.ready.clear()
    fakes.anomalies.add(anomaly_event("late", M1, NOW))
    listing = asyncio.create_task(ids(client, "/api/v1/anomaly/recent"))
    await asyncio.sleep(0.05)
    assert not listing.done()
    fakes.anomalies.ready.set()
    assert await listing == ["late"]
