"""api/model_performance.py over in-memory ports: the retrain trigger, training jobs and the
metrics trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from schemas.events import ModelTrained, TrainCommand, TrainingProgress, TrainingStarted
from streams.topics import COMMANDS
from tests.api.fakes import M1, Client, Fakes, baseline_model

NOW = datetime.now(UTC).replace(microsecond=0)
TRIGGER = f"/api/v1/model-performance/retrain/trigger?machine_id={M1}"


async def test_trigger_queues_a_retrain(client: Client, fakes: Fakes) -> None:
    fakes.trainer.outcome = "silent"  # the worker has not started it yet
    resp = await client.post(f"{TRIGGER}&trigger_type=drift&reason=cv rising")
    assert resp.status == 200
    body = await resp.json()
    [cmd] = fakes.publisher.records(COMMANDS)
    assert isinstance(cmd, TrainCommand)
    assert (cmd.machine_id, cmd.model_type, cmd.trigger_type, cmd.reason) == (
        M1, "baseline", "drift", "cv rising")
    assert (cmd.start, cmd.end) == (None, None)  # the machine's last window_days
    assert body == {"triggered": True, "trigger_type": "drift", "reason": "cv rising",
                    "training_job_id": cmd.training_job_id,
                    "estimated_completion": (cmd.requested_at + timedelta(seconds=30)).isoformat()}


async def test_a_second_trigger_names_the_queued_job(client: Client, fakes: Fakes) -> None:
    fakes.trainer.outcome = "silent"
    first = await (await client.post(TRIGGER)).json()
    second = await (await client.post(TRIGGER)).json()
    assert second == {"triggered": False, "trigger_type": "manual",
                      "reason": "a training job for this machine and model type is already "
                                "running", "training_job_id": first["training_job_id"],
                      "estimated_completion": None}
    assert len(fakes.publisher.records(COMMANDS)) == 1


async def test_a_trigger_after_the_job_ended_queues_another(client: Client,
                                                            fakes: Fakes) -> None:
    first = await (await client.post(TRIGGER)).json()  # the fake worker completes it at once
    second = await (await client.post(TRIGGER)).json()
    assert second["triggered"] is True
    assert second["training_job_id"] != first["training_job_id"]


async def test_a_job_as_the_log_tells_it(client: Client, fakes: Fakes) -> None:
    t = NOW - timedelta(minutes=5)
    job: dict[str, Any] = {"machine_id": M1, "model_type": "baseline", "training_job_id": "j1",
                           "job_id": "j1"}
    fakes.jobs.add(TrainingStarted(event_id="s", occurred_at=t, trigger_type="scheduled", **job),
                   TrainingProgress(event_id="p", occurred_at=NOW, stage="fitting",
                                    progress_pct=60.0, message="fitting regression", **job))
    resp = await client.get("/api/v1/model-performance/jobs/j1")
    assert resp.status == 200
    assert await resp.json() == {
        "training_job_id": "j1", "machine_id": M1, "model_type": "baseline",
        "status": "running", "stage": "fitting", "progress_pct": 60.0,
        "message": "fitting regression", "trigger_type": "scheduled", "version": None,
        "accepted": None, "error": None, "started_at": t.isoformat(),
        "updated_at": NOW.isoformat(), "events": ["training_started", "training_progress"]}
    missing = await client.get("/api/v1/model-performance/jobs/nope")
    assert missing.status == 404
    assert await missing.json() == {"detail": "training job nope not found"}


async def test_the_trend_of_the_recent_versions(client: Client, fakes: Fakes) -> None:
    for v, days_ago in ((1, 40), (2, 20), (3, 10), (4, 1)):
        model = baseline_model(M1, v, trained_at=NOW - timedelta(days=days_ago))
        fakes.registry.add(ModelTrained(event_id=f"t{v}", occurred_at=NOW, machine_id=M1,
                                        model_type="baseline", version=v, model=model))
    resp = await client.get(f"/api/v1/model-performance/metrics/trend?machine_id={M1}")
    assert resp.status == 200
    body = await resp.json()
    assert [m["model_version"] for m in body["metrics"]] == [2, 3, 4]  # the last 30 days
    assert [m["cv_rmse"] for m in body["metrics"]] == [12.0, 13.0, 14.0]
    assert (body["trend_direction"], body["degradation_rate"]) == ("degrading", 1.0)
    week = await (await client.get(
        f"/api/v1/model-performance/metrics/trend?machine_id={M1}&days=7")).json()
    assert [m["model_version"] for m in week["metrics"]] == [4]
    assert (week["trend_direction"], week["degradation_rate"]) == ("stable", 0.0)


async def test_the_trend_without_a_cv_is_stable(client: Client, fakes: Fakes) -> None:
    for v in (1, 2):
        model = baseline_model(M1, v)
        model = msgspec.structs.replace(model, metrics=msgspec.structs.replace(
            model.metrics, cv_rmse_validation=None))
        fakes.registry.add(ModelTrained(event_id=f"t{v}", occurred_at=NOW, machine_id=M1,
                                        model_type="baseline", version=v, model=model))
    body = await (await client.get(
        f"/api/v1/model-performance/metrics/trend?machine_id={M1}")).json()
    assert [m["cv_rmse"] for m in body["metrics"]] == [None, None]
    assert (body["trend_direction"], body["degradation_rate"]) == ("stable", 0.0)


@pytest.mark.parametrize(("query", "status", "loc"), [
    ("days=0", 422, ["query", "days"]),
    ("days=week", 422, ["query", "days"]),
    ("model_type=neural", 422, ["query", "model_type"]),
    ("", 404, None),
])
async def test_the_trend_checks_its_query(client: Client, query: str, status: int,
                                          loc: list[str] | None) -> None:
    resp = await client.get(f"/api/v1/model-performance/metrics/trend?machine_id={M1}&{query}")
    assert resp.status == status
    body = await resp.json()
    if loc is None:
        assert body == {"detail": f"no baseline models of {M1} trained in the last 30 days"}
    else:
        assert body["detail"][0]["loc"] == loc


async def test_trigger_checks_its_query(client: Client, fakes: Fakes) -> None:
    for query, loc in (("trigger_type=hourly", ["query", "trigger_type"]),
                       ("reason=" + "x" * 1001, ["query", "reason"])):
        resp = await client.post(f"{TRIGGER}&{query}")
        assert resp.status == 422
        assert (await resp.json())["detail"][0]["loc"] == loc
    assert fakes.publisher.sent == []
