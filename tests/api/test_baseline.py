"""api/baseline.py over in-memory ports: training through the (fake) worker, the registry's
listings, prediction and deviation from the active model, activation and rollback."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from schemas.events import (
    ModelActivated,
    ModelRolledBack,
    ModelTrained,
    TrainCommand,
    TrainingStarted,
)
from streams.settings import Settings
from streams.topics import COMMANDS, MODELS
from tests.api.fakes import M1, Client, FakeHistory, Fakes, baseline_model, synthetic_hourly

M2 = "c0000000-0000-0000-0000-000000000002"
NOW = datetime.now(UTC).replace(microsecond=0)
TRAIN = {"machine_id": M1, "start_date": "2026-01-01T00:00:00Z",
         "end_date": "2026-02-01T00:00:00Z", "drivers": ["production"]}
DAY = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(Settings(), training_timeout_s=0.3)


@pytest.fixture
def fakes() -> Fakes:
    """Baselines v1 (accepted), v2 (failed acceptance) and v3 (accepted, active) of M1, each
    5 kWh + 0.2 kWh per unit; a day of hourly records of M1 (10, 11, 12 kWh, 20 units)."""
    f = Fakes(history=FakeHistory(hourly=synthetic_hourly(M1, DAY, DAY + timedelta(days=1))))
    f.registry.add(*(ModelTrained(event_id=f"t{v}", occurred_at=NOW, machine_id=M1,
                                  model_type="baseline", version=v,
                                  model=baseline_model(M1, v, accepted=v != 2))
                     for v in (1, 2, 3)),
                   ModelActivated(event_id="a3", occurred_at=NOW, machine_id=M1,
                                  model_type="baseline", version=3, model_id="model-v3"))
    return f


# -- train -----------------------------------------------------------------------------------


async def test_train_queues_a_command_and_answers_the_trained_model(
        client: Client, fakes: Fakes, settings: Settings) -> None:
    resp = await client.post("/api/v1/baseline/train", json=TRAIN)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    [cmd] = fakes.publisher.records(COMMANDS)
    assert isinstance(cmd, TrainCommand)
    assert (cmd.machine_id, cmd.model_type, cmd.trigger_type, cmd.reason) == (
        M1, "baseline", "manual", "POST /baseline/train")
    assert (cmd.start, cmd.end, cmd.drivers) == (
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), ["production"])
    assert cmd.window_days == settings.retrain_window_days
    assert fakes.publisher.keys(COMMANDS) == [M1.encode()]
    assert body["training_job_id"] == cmd.training_job_id
    assert (body["model_version"], body["version"], body["machine_id"]) == (4, 4, M1)
    assert body["model_id"] == f"{cmd.training_job_id}-model"
    assert body["meets_quality_threshold"] is True and body["cv_rmse"] == 14.0


async def test_train_that_fails_is_400_with_the_error(client: Client, fakes: Fakes) -> None:
    fakes.trainer.outcome = "failed"
    resp = await client.post("/api/v1/baseline/train", json=TRAIN)
    assert resp.status == 400
    [cmd] = fakes.trainer.commands
    assert await resp.json() == {"detail": fakes.trainer.error,
                                 "training_job_id": cmd.training_job_id}


async def test_train_that_takes_too_long_is_504(client: Client, fakes: Fakes) -> None:
    fakes.trainer.outcome = "silent"
    resp = await client.post("/api/v1/baseline/train", json=TRAIN)
    assert resp.status == 504
    [cmd] = fakes.trainer.commands
    assert await resp.json() == {
        "detail": "training did not finish in time; follow it on the training WebSocket",
        "training_job_id": cmd.training_job_id}
    # and it counts as running: a second request is refused until the log shows its end
    again = await client.post("/api/v1/baseline/train", json=TRAIN)
    assert again.status == 409
    assert (await again.json())["training_job_id"] == cmd.training_job_id


async def test_train_while_a_job_runs_is_409_and_sends_nothing(client: Client,
                                                               fakes: Fakes) -> None:
    fakes.jobs.add(TrainingStarted(event_id="s", occurred_at=NOW, machine_id=M1,
                                   model_type="baseline", training_job_id="job-r",
                                   job_id="job-r"))
    resp = await client.post("/api/v1/baseline/train", json=TRAIN)
    assert resp.status == 409
    assert await resp.json() == {"detail": "a training job for this machine is already running",
                                 "training_job_id": "job-r"}
    assert fakes.publisher.sent == []


@pytest.mark.parametrize(("change", "loc"), [
    ({"start_date": None}, ["body", "start_date"]),
    ({"end_date": "2025-12-01T00:00:00Z"}, ["body", "end_date"]),
    ({"drivers": "production"}, ["body", "drivers"]),
    ({"machine_id": None}, ["body", "machine_id"]),
])
async def test_train_checks_its_body(client: Client, fakes: Fakes, change: dict[str, Any],
                                     loc: list[str]) -> None:
    resp = await client.post("/api/v1/baseline/train", json={**TRAIN, **change})
    assert resp.status == 422
    assert (await resp.json())["detail"][0]["loc"] == loc
    assert fakes.publisher.sent == []


async def test_train_with_kafka_not_acknowledging_is_503(client: Client, fakes: Fakes) -> None:
    fakes.publisher.failure = KafkaTimeoutError()
    resp = await client.post("/api/v1/baseline/train", json=TRAIN)
    assert resp.status == 503 and resp.headers["Retry-After"] == "5"
    assert fakes.trainer.commands == []


# -- the registry ----------------------------------------------------------------------------


async def test_models_newest_first_with_the_active_one(client: Client) -> None:
    body = await (await client.get(f"/api/v1/baseline/models?machine_id={M1}")).json()
    assert (body["total_models"], body["active_version"]) == (3, 3)
    assert [(m["model_version"], m["is_active"], m["meets_quality_threshold"])
            for m in body["models"]] == [(3, True, True), (2, False, False), (1, False, True)]
    none = await (await client.get(f"/api/v1/baseline/models?machine_id={M2}")).json()
    assert none == {"machine_id": M2, "total_models": 0, "active_version": None, "models": []}
    missing = await client.get("/api/v1/baseline/models")
    assert missing.status == 422
    assert (await missing.json())["detail"][0]["loc"] == ["query", "machine_id"]


async def test_one_model_and_its_explanation(client: Client) -> None:
    plain = await (await client.get("/api/v1/baseline/model/model-v2")).json()
    assert (plain["model_id"], plain["version"], plain["accepted"]) == ("model-v2", 2, False)
    assert "explanation" not in plain
    explained = await (await client.get(
        "/api/v1/baseline/model/model-v2?include_explanation=true")).json()
    assert explained["explanation"].startswith("Hourly energy ≈ 5 kWh +0.2 × production")
    assert "does not meet" in explained["explanation"]
    assert explained["explanation"].endswith(": CV(RMSE) too high")
    missing = await client.get("/api/v1/baseline/model/nope")
    assert missing.status == 404
    assert await missing.json() == {"detail": "model nope not found"}


async def test_predict_from_the_active_model(client: Client) -> None:
    resp = await client.post("/api/v1/baseline/predict", json={
        "machine_id": M1, "features": {"production_count": 10,
                                       "timestamp": "2026-01-05T08:00:00Z"}})
    assert resp.status == 200
    body = await resp.json()
    assert (body["predicted_energy_kwh"], body["model_version"], body["model_id"]) == (
        7.0, 3, "model-v3")
    assert body["features"]["timestamp"] == "2026-01-05T08:00:00+00:00"
    assert body["warnings"] == ["outdoor_temp_c not given; degree terms taken as 0"]
    throughput = await (await client.post("/api/v1/baseline/predict", json={
        "machine_id": M1, "features": {"throughput_units_per_hour": 20}})).json()
    assert throughput["predicted_energy_kwh"] == 9.0  # taken as the hour's production


async def test_predict_checks_features_and_needs_an_active_model(client: Client) -> None:
    bad = await client.post("/api/v1/baseline/predict", json={
        "machine_id": M1, "features": {"production_count": -1}})
    assert bad.status == 422
    assert (await bad.json())["detail"][0]["loc"] == ["body", "features", "production_count"]
    none = await client.post("/api/v1/baseline/predict", json={"machine_id": M2})
    assert none.status == 404
    assert await none.json() == {
        "detail": f"no active baseline for machine {M2}; train one first"}


async def test_deviation_of_a_day(client: Client, fakes: Fakes) -> None:
    resp = await client.get("/api/v1/baseline/deviation", params={
        "machine_id": M1, "start": DAY.isoformat(), "end": (DAY + timedelta(days=1)).isoformat()})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert fakes.history.asked == [("hourly", M1, DAY, DAY + timedelta(days=1))]
    assert (body["hours"], body["model_version"]) == (24, 3)
    # 8 x (10 + 11 + 12) kWh against 24 x (5 + 0.2 x 20) kWh
    assert (body["actual_energy_kwh"], body["predicted_energy_kwh"]) == (264.0, 216.0)
    assert (body["deviation_kwh"], body["deviation_percent"], body["enpi"]) == (
        48.0, 22.22, 1.2222)
    assert body["deviation_severity"] == "critical"
    assert body["hourly_deviations"][1] == {
        "hour": (DAY + timedelta(hours=1)).isoformat(), "actual_kwh": 11.0,
        "predicted_kwh": 9.0, "deviation_kwh": 2.0}


async def test_deviation_without_data_is_404(client: Client) -> None:
    resp = await client.get("/api/v1/baseline/deviation", params={
        "machine_id": M1, "start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"})
    assert resp.status == 404
    assert (await resp.json())["detail"].startswith(f"no hourly data of {M1} between")


# -- activate and roll back ------------------------------------------------------------------


async def test_activating_a_failed_model_needs_force(client: Client, fakes: Fakes) -> None:
    refused = await client.post("/api/v1/baseline/model/model-v2/activate")
    assert refused.status == 422
    detail = (await refused.json())["detail"][0]
    assert detail["loc"] == ["query", "force"] and "CV(RMSE) too high" in detail["msg"]
    assert fakes.publisher.sent == []
    resp = await client.post("/api/v1/baseline/model/model-v2/activate?force=true")
    assert resp.status == 200
    assert await resp.json() == {"machine_id": M1, "model_type": "baseline",
                                 "active_version": 2, "previous_version": 3}
    [event] = fakes.publisher.records(MODELS)
    assert isinstance(event, ModelActivated)
    assert (event.version, event.model_id, event.previous_version, event.reason) == (
        2, "model-v2", 3, "activated through the API")
    assert fakes.publisher.keys(MODELS) == [f"{M1}|baseline|active".encode()]
    listing = await (await client.get(f"/api/v1/baseline/models?machine_id={M1}")).json()
    assert listing["active_version"] == 2  # the registry folded it


async def test_activate_an_unknown_model_is_404(client: Client) -> None:
    resp = await client.post("/api/v1/baseline/model/nope/activate")
    assert resp.status == 404 and await resp.json() == {"detail": "model nope not found"}


async def test_rollback_goes_to_the_newest_accepted_older_version(
        client: Client, fakes: Fakes) -> None:
    resp = await client.post(f"/api/v1/baseline/rollback?machine_id={M1}&reason=drifted")
    assert resp.status == 200
    assert await resp.json() == {"machine_id": M1, "model_type": "baseline",
                                 "active_version": 1, "from_version": 3}
    [event] = fakes.publisher.records(MODELS)
    assert isinstance(event, ModelRolledBack)
    assert (event.version, event.from_version, event.reason) == (1, 3, "drifted")
    again = await client.post(f"/api/v1/baseline/rollback?machine_id={M1}")
    assert again.status == 404  # v1 is active now: nothing older to go back to
    assert await again.json() == {"detail": f"nothing to roll back to for {M1} (baseline)"}


async def test_rollback_checks_its_model_type(client: Client) -> None:
    resp = await client.post(f"/api/v1/baseline/rollback?machine_id={M1}&model_type=neural")
    assert resp.status == 422
    assert (await resp.json())["detail"][0]["loc"] == ["query", "model_type"]
