"""api/training.py through the training views: which job counts as running (the log's,
or one this process queued and the log has not shown yet), and the command queued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_aiohttp import AiohttpClient

from api.app import create_app
from api.keys import PENDING
from schemas.events import TrainingCompleted, TrainingStarted
from streams.settings import Settings
from streams.topics import COMMANDS
from tests.api.fakes import M1, Client, Fakes

M2 = "c0000000-0000-0000-0000-000000000002"
NOW = datetime.now(UTC)
TRIGGER = "/api/v1/model-performance/retrain/trigger?machine_id="


def _job(job_id: str, machine_id: str = M1) -> dict[str, Any]:
    return {"machine_id": machine_id, "model_type": "baseline", "training_job_id": job_id,
            "job_id": job_id}


async def test_a_job_the_log_shows_running_blocks_a_trigger(client: Client,
                                                            fakes: Fakes) -> None:
    fakes.jobs.add(TrainingStarted(event_id="s", occurred_at=NOW, **_job("elsewhere")))
    body = await (await client.post(TRIGGER + M1)).json()
    assert (body["triggered"], body["training_job_id"]) == (False, "elsewhere")
    assert fakes.publisher.sent == []
    other = await (await client.post(TRIGGER + M2)).json()  # another machine is free
    assert other["triggered"] is True


async def test_a_queued_job_counts_until_the_log_shows_its_end(client: Client,
                                                               fakes: Fakes) -> None:
    fakes.trainer.outcome = "silent"
    first = await (await client.post(TRIGGER + M1)).json()
    job_id = first["training_job_id"]
    assert client.app[PENDING][(M1, "baseline")][0] == job_id
    assert (await (await client.post(TRIGGER + M1)).json())["triggered"] is False
    fakes.jobs.add(TrainingStarted(event_id="s", occurred_at=NOW, **_job(job_id)),
                   TrainingCompleted(event_id="c", occurred_at=NOW, version=1, accepted=True,
                                     **_job(job_id)))
    after = await (await client.post(TRIGGER + M1)).json()
    assert after["triggered"] is True and after["training_job_id"] != job_id
    assert client.app[PENDING][(M1, "baseline")][0] == after["training_job_id"]


async def test_a_queued_job_the_log_never_shows_expires_after_10_minutes(
        client: Client, fakes: Fakes) -> None:
    now = datetime.now(UTC)
    client.app[PENDING][(M1, "baseline")] = ("lost", now - timedelta(minutes=11))
    body = await (await client.post(TRIGGER + M1)).json()
    assert body["triggered"] is True and body["training_job_id"] != "lost"
    client.app[PENDING][(M1, "baseline")] = ("recent", now - timedelta(minutes=9))
    fakes.trainer.outcome = "silent"
    body = await (await client.post(TRIGGER + M1)).json()
    assert (body["triggered"], body["training_job_id"]) == (False, "recent")


async def test_the_command_carries_the_settings_window(aiohttp_client: AiohttpClient,
                                                       fakes: Fakes) -> None:
    settings = Settings(retrain_window_days=14)
    client = await aiohttp_client(create_app(settings, fakes.deps()))
    await client.post(TRIGGER + M1)
    [cmd] = fakes.publisher.records(COMMANDS)
    assert cmd.window_days == 14 and cmd.activation == "auto"
    assert NOW <= cmd.requested_at <= datetime.now(UTC)


async def test_no_trigger_without_a_publisher(aiohttp_client: AiohttpClient,
                                              fakes: Fakes) -> None:
    deps = fakes.deps()
    deps.publisher = None  # the real producer, still connecting (Kafka not up)
    client = await aiohttp_client(create_app(Settings(kafka_bootstrap="127.0.0.1:9"), deps))
    resp = await client.post(TRIGGER + M1)
    assert resp.status == 503
    assert await resp.json() == {"detail": "Kafka producer not available yet"}
    assert client.app[PENDING] == {}
