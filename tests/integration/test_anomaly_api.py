"""POST /anomaly/detect on readings replayed from Kafka by time; the anomaly log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
import pytest

from schemas.machines import machine_by_id
from simulation import generate
from streams import topics
from tests.integration.clients import producer, send_readings
from tests.integration.conftest import Stack
from tests.integration.services import get_json

pytestmark = pytest.mark.integration

CONVEYOR = "c0000000-0000-0000-0000-000000000006"
T0 = datetime(2005, 1, 3, tzinfo=UTC)  # a Monday
FAULT = (T0 + timedelta(days=8, hours=10), T0 + timedelta(days=8, hours=12))


@pytest.fixture(scope="module")
def api(stack: Stack) -> str:
    return stack.start_api()


async def seed(bootstrap: str) -> None:
    """Nine days of the conveyor; on the ninth it draws 3x its power from 10:00 to 12:00."""
    conveyor = machine_by_id(CONVEYOR)
    assert conveyor is not None
    sim = generate(seed=5, start=T0, duration=timedelta(days=9), machines=[conveyor],
                   anomalies=False)
    readings = [msgspec.structs.replace(r, power_kw=3 * r.power_kw, energy_kwh=3 * r.energy_kwh)
                if FAULT[0] <= r.timestamp < FAULT[1] else r for r in sim.readings]
    async with producer(bootstrap) as p:
        await send_readings(p, topics.READINGS, readings)


async def detect(s: aiohttp.ClientSession, api: str, day: int,
                 **extra: object) -> tuple[int, dict[str, Any]]:
    body = {"machine_id": CONVEYOR, "start": (T0 + timedelta(days=day)).isoformat(),
            "end": (T0 + timedelta(days=day + 1)).isoformat(), **extra}
    async with s.post(f"{api}/api/v1/anomaly/detect", json=body) as r:
        return r.status, await r.json()


async def test_detect_clean_faulty_and_idempotent(api: str, kafka_bootstrap: str) -> None:
    await seed(kafka_bootstrap)
    async with aiohttp.ClientSession() as s:
        status, clean = await detect(s, api, 7)
        assert status == 200, clean
        assert clean["total_data_points"] == 24 and clean["reference_period"]["hours"] == 168
        assert clean["anomalies_detected"] == 0, clean["anomalies"]

        status, faulty = await detect(s, api, 8, contamination=0.1)
        assert status == 200, faulty
        hours = {a["detected_at"] for a in faulty["anomalies"]}
        assert {FAULT[0].isoformat(), (FAULT[0] + timedelta(hours=1)).isoformat()} <= hours
        assert len(hours) <= 4  # the fault, not a tenth of the day
        first = faulty["anomalies"][0]
        assert first["anomaly_type"] == "spike" and first["severity"] == "critical"
        assert first["expected_value"] < first["metric_value"]
        assert faulty["anomalies_saved"] == faulty["anomalies_detected"] > 0

        status, again = await detect(s, api, 8, contamination=0.1)
        assert status == 200
        assert again["anomalies_detected"] == faulty["anomalies_detected"]
        assert again["anomalies_saved"] == 0
        assert [a["id"] for a in again["anomalies"]] == [a["id"] for a in faulty["anomalies"]]

        # Bad requests say which field.
        for extra, field in (({"contamination": 0.9}, "contamination"),
                             ({"use_baseline": "yes"}, "use_baseline")):
            status, body = await detect(s, api, 8, **extra)
            assert status == 422 and body["detail"][0]["field"] == field
        async with s.post(f"{api}/api/v1/anomaly/detect", json={
                "machine_id": "nope", "start": T0.isoformat(),
                "end": (T0 + timedelta(days=1)).isoformat()}) as r:
            assert r.status == 404
        status, body = await detect(s, api, 40)
        assert status == 400 and "no readings" in body["detail"]

        # The log: active, search, resolve.
        act = await get_json(f"{api}/api/v1/anomaly/active?machine_id={CONVEYOR}")
        ids = {a["id"] for a in act["anomalies"]}
        assert {a["id"] for a in faulty["anomalies"]} <= ids
        target = faulty["anomalies"][0]["id"]
        async with s.put(f"{api}/api/v1/anomaly/{target}/resolve",
                         json={"resolution_notes": "belt jammed"}) as r:
            assert r.status == 200
        # The test's period, start and end: a search reaches back at most a year.
        found = await get_json(f"{api}/api/v1/anomaly/search?machine_id={CONVEYOR}&is_resolved=true"
                          f"&start_time={T0:%Y-%m-%dT%H:%M:%SZ}"
                          f"&end_time={T0 + timedelta(days=9):%Y-%m-%dT%H:%M:%SZ}")
        assert [a["id"] for a in found["anomalies"]] == [target]
        assert found["anomalies"][0]["resolution_notes"] == "belt jammed"
        async with s.put(f"{api}/api/v1/anomaly/nope/resolve") as r:
            assert r.status == 404
