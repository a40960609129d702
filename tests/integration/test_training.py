"""Training jobs through Kafka, the registry, drift and restarts, on the real stack."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from detectors.hourly import hourly_records
from schemas.events import encode
from schemas.machines import machine_by_id
from simulation import generate
from streams import topics
from tests.integration.clients import WsCollector, producer, ws_client
from tests.integration.conftest import ALL_OUTPUT_PARTITIONS, Stack, bridge_partitions
from tests.integration.services import eventually, get_json, http_json, wait_until

pytestmark = pytest.mark.integration

BOILER = "c0000000-0000-0000-0000-000000000007"
PUMP = "c0000000-0000-0000-0000-000000000004"
T0 = datetime(2004, 3, 1, tzinfo=UTC)  # spring: heating on some days, off on others
DAYS = 35


@pytest.fixture(scope="module")
def api(stack: Stack) -> str:
    worker = stack.start("worker", ENMS_RETRAIN_WINDOW_DAYS="35")
    base = stack.start_api()
    worker.wait_for_log("Worker]: Ready", 120)
    wait_until(lambda: len(bridge_partitions(base)) == ALL_OUTPUT_PARTITIONS, 60, "bridge")
    return base


async def seed_hourly(bootstrap: str, machine_id: str, start: datetime, days: int) -> None:
    """Put simulated hourly energy of one machine on enms.energy.hourly (no anomalies)."""
    m = machine_by_id(machine_id)
    assert m is not None, machine_id
    sim = generate(seed=11, start=start, duration=timedelta(days=days), machines=[m],
                   anomalies=False)
    rows = list(hourly_records(sim.readings))
    async with producer(bootstrap) as p:
        futs = [await p.send(topics.ENERGY_HOURLY, key=machine_id.encode(), value=encode(r),
                             timestamp_ms=int((r.hour_start + timedelta(hours=1)).timestamp() * 1000))
                for r in rows]
        await asyncio.gather(*futs)


def training_events(ws: WsCollector, job_id: str) -> list[dict[str, Any]]:
    return [m for m in ws.messages if m.get("type", "").startswith("training_")
            and m["data"]["training_job_id"] == job_id]


async def post(session: aiohttp.ClientSession, url: str, *, params: Mapping[str, str] | None = None,
               json: object = None) -> tuple[int, dict[str, Any]]:
    async with session.post(url, params=params, json=json) as r:
        return r.status, await r.json()


async def test_retrain_by_rest_reports_progress_and_refuses_a_second_job(
        api: str, kafka_bootstrap: str) -> None:
    await seed_hourly(kafka_bootstrap, BOILER, T0, DAYS)
    url = f"{api}/api/v1/model-performance/retrain/trigger"
    params = {"model_type": "baseline", "machine_id": BOILER, "trigger_type": "manual",
              "reason": "test"}
    async with ws_client(api.replace("http", "ws") + "/api/v1/ws/training") as (ws, _), \
            aiohttp.ClientSession() as s:
        status, first = await post(s, url, params=params)
        assert status == 200 and first["triggered"] is True, first
        job = first["training_job_id"]
        status, second = await post(s, url, params=params)
        assert status == 200 and second["triggered"] is False
        assert second["training_job_id"] == job
        await ws.wait_for(lambda _: any(m["type"] in {"training_completed", "training_failed"}
                                        for m in training_events(ws, job)), 120,
                          "the job's terminal event")
    types = [m["type"] for m in training_events(ws, job)]
    assert types[0] == "training_started"
    assert types.count("training_progress") >= 2
    assert types[-1] == "training_completed", training_events(ws, job)[-1]
    assert types.count("training_completed") + types.count("training_failed") == 1
    progress = [m["data"]["progress_pct"] for m in training_events(ws, job)
                if m["type"] == "training_progress"]
    assert progress == sorted(progress) and all(0 < p < 100 for p in progress)
    done = training_events(ws, job)[-1]["data"]
    assert done["accepted"] is True, done
    # The registry (the API's view of enms.models, a separate consumer from the bridge, so
    # it may lag the event by a moment) has it, active.
    def active_now() -> bool:
        body = http_json(f"{api}/api/v1/baseline/models?machine_id={BOILER}")
        return bool(body["active_version"] == done["version"]
                    and body["models"][0]["is_active"] is True)
    await eventually(active_now, 30, "the new version to be listed and active")


async def test_baseline_train_without_data_fails_with_a_reason(api: str) -> None:
    async with ws_client(api.replace("http", "ws") + "/api/v1/ws/training") as (ws, _), \
            aiohttp.ClientSession() as s:
        status, body = await post(s, f"{api}/api/v1/baseline/train", json={
            "machine_id": PUMP, "start_date": "2020-01-01T00:00:00Z",
            "end_date": "2020-02-01T00:00:00Z"})
        assert status == 400, body
        assert body["detail"] and body["training_job_id"]
        await ws.wait_for(lambda _: any(m["type"] == "training_failed"
                                        for m in training_events(ws, body["training_job_id"])),
                          30, "training_failed on the WebSocket")
    failed = [m for m in training_events(ws, body["training_job_id"])
              if m["type"] == "training_failed"][0]["data"]
    assert failed["error"] == body["detail"]


async def test_baseline_train_returns_the_model_fields(api: str, kafka_bootstrap: str) -> None:
    async with aiohttp.ClientSession() as s:
        status, body = await post(s, f"{api}/api/v1/baseline/train", json={
            "machine_id": BOILER, "start_date": T0.isoformat(),
            "end_date": (T0 + timedelta(days=DAYS)).isoformat()})
    assert status == 200, body
    for field in ("model_id", "model_version", "r_squared", "rmse", "mae", "cv_rmse", "nmbe",
                  "training_samples", "coefficients", "intercept", "feature_names",
                  "meets_quality_threshold"):
        assert field in body, field
    assert body["training_samples"] > 0 and body["meets_quality_threshold"] is True
    detail = await get_json(f"{api}/api/v1/baseline/model/{body['model_id']}?include_explanation=true")
    assert "Guideline 14" in detail["explanation"]
