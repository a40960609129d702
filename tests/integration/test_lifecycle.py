"""Drift to automatic retrain, and restarts: the registry and jobs survive in Kafka."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from schemas.machines import machine_by_id
from simulation import generate
from streams import topics
from tests.integration.clients import producer, send_readings, ws_client
from tests.integration.conftest import ALL_OUTPUT_PARTITIONS, Stack, bridge_partitions
from tests.integration.services import eventually, get_json, http_json
from tests.integration.test_training import DAYS, T0, post, seed_hourly, training_events

pytestmark = pytest.mark.integration
# A silent job is failed after 20 s (the default 300 s is for real workers): either the
# restarted worker resumes the crashed job, or the backstop fails it; never "running".
ENV = {"ENMS_RETRAIN_WINDOW_DAYS": "35", "ENMS_JOB_STALE_AFTER_S": "20"}
#: HVAC (heating and cooling): test_training uses the boiler, and the topics are shared.
MACHINE = "c0000000-0000-0000-0000-000000000002"


async def ready(stack: Stack, api: str | None = None) -> str:
    w = stack.start("worker", **ENV)
    base = api or await stack.api()
    await w.log_shows("Worker]: Ready", 120)
    await eventually(lambda: len(bridge_partitions(base)) == ALL_OUTPUT_PARTITIONS, 60, "bridge")
    return base


async def test_drift_retrains_and_state_survives_restarts(stack: Stack, kafka_bootstrap: str) -> None:
    api = await ready(stack)
    await seed_hourly(kafka_bootstrap, MACHINE, T0, DAYS)
    async with aiohttp.ClientSession() as s:
        status, v1 = await post(s, f"{api}/api/v1/baseline/train", json={
            "machine_id": MACHINE, "start_date": T0.isoformat(),
            "end_date": (T0 + timedelta(days=DAYS)).isoformat()})
    assert status == 200 and v1["meets_quality_threshold"], v1
    await eventually(lambda: http_json(f"{api}/api/v1/baseline/models?machine_id={MACHINE}")
                     ["active_version"] == v1["model_version"], 30, "v1 active")

    # Two days of the machine's readings through the worker; 25 % less efficient after 12 h.
    start = T0 + timedelta(days=DAYS)
    hvac = machine_by_id(MACHINE)
    assert hvac is not None
    sim = generate(seed=12, start=start, duration=timedelta(days=2),
                   machines=[hvac], anomalies=False,
                   efficiency_changes={MACHINE: (start + timedelta(hours=12), 1.25)})
    async with ws_client(api.replace("http", "ws") + "/api/v1/ws/events") as (ws, _), \
            producer(kafka_bootstrap) as p:
        await send_readings(p, topics.READINGS, list(sim.readings))
        alert = await ws.wait_for(lambda _: next(
            (e for e in ws.events("system_alert")
             if e["machine_id"] == MACHINE and e["alert_type"] == "baseline_drift"), None),
            120, "a drift alert for the HVAC")
        job = await ws.wait_for(lambda _: next(
            (e["training_job_id"] for e in ws.events("training_started")
             if e["machine_id"] == MACHINE and e["trigger_type"] == "drift"), None),
            60, "a drift retrain to start")
        await ws.wait_for(lambda _: any(m["type"] in {"training_completed", "training_failed"}
                                        for m in training_events(ws, job)), 120,
                          "the drift retrain to end")
        # Live EnPI: metric events of the machine carry the expected energy and the CUSUM.
        assert any(e["machine_id"] == MACHINE and e["expected_energy_kwh"] is not None
                   and e["cusum_kwh"] is not None for e in ws.events("metric_updated"))
    assert alert["details"]["direction"] == "up"
    # The retrain's actual result: it completes, its model (fitted on the 35-day window,
    # drift included) passes acceptance, and it becomes the active version 2.
    end = training_events(ws, job)[-1]
    assert end["type"] == "training_completed", end
    result = end["data"]
    assert result["accepted"] is True and result["reasons"] == [], result
    assert result["version"] == v1["model_version"] + 1
    assert result["metrics"]["activated"] is True and result["metrics"]["samples"] > 24 * 7
    want, n_models = result["version"], 2

    def registry_state() -> bool:
        body = http_json(f"{api}/api/v1/baseline/models?machine_id={MACHINE}")
        return bool(body["active_version"] == want and body["total_models"] == n_models)
    await eventually(registry_state, 30, f"{n_models} models with v{want} active")

    # Restart everything: registry and active versions come back from Kafka.
    stack.stop()
    stack.procs.clear()
    api2 = await ready(stack)
    body = await get_json(f"{api2}/api/v1/baseline/models?machine_id={MACHINE}")
    assert body["active_version"] == want
    assert body["total_models"] == n_models

    # A job whose worker dies mid-way ends after the restart, with one terminal event.
    async with ws_client(api2.replace("http", "ws") + "/api/v1/ws/training") as (ws, _), \
            aiohttp.ClientSession() as s:
        status, trig = await post(s, f"{api2}/api/v1/model-performance/retrain/trigger",
                                  params={"machine_id": MACHINE, "reason": "crash test"})
        assert status == 200 and trig["triggered"], trig
        job = trig["training_job_id"]
        await ws.wait_for(lambda _: training_events(ws, job), 60, "the job to start")
        worker = next(p for p in stack.procs if p.command == "worker")
        worker.kill()
        await ready(stack, api2)
        await ws.wait_for(lambda _: any(m["type"] in {"training_completed", "training_failed"}
                                        for m in training_events(ws, job)), 120,
                          "the interrupted job to end after the restart")
    terminal = [m for m in training_events(ws, job)
                if m["type"] in {"training_completed", "training_failed"}]
    assert len({m["data"]["event_id"] for m in terminal}) == 1
    # Resumed by the restarted worker (completed) or failed by the stale-job sweeper: either
    # way exactly one terminal event, and the job's status says the same.
    status_now = await get_json(f"{api2}/api/v1/model-performance/jobs/{job}")
    assert status_now["status"] == terminal[0]["type"].removeprefix("training_")
