"""Training jobs as the training views see them (``POST /baseline/train``,
``POST /model-performance/retrain/trigger``): queue a command, find the running job."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from aiohttp import web

from api.context import publish
from api.keys import PENDING, SETTINGS
from detectors.registry import Jobs
from schemas.events import TrainCommand
from streams.topics import COMMANDS

MODEL_TYPES = ("baseline",)
TRIGGER_TYPES = ("manual", "scheduled", "drift")
#: How long a queued job counts as running while the log shows nothing of it.
PENDING_FOR = timedelta(minutes=10)


def running_job(request: web.Request, js: Jobs, machine_id: str, model_type: str) -> str | None:
    """Id of a job of this machine and type that is running, or that this process queued
    (within `PENDING_FOR`) and the log has not shown ended; None if there is none."""
    job = js.running(machine_id, model_type)
    if job is not None:
        return job.training_job_id
    pending = request.app[PENDING]
    queued = pending.get((machine_id, model_type))
    if queued is None:
        return None
    job_id, at = queued
    known = js.jobs.get(job_id)
    if (known is not None and known.terminal) or datetime.now(UTC) - at > PENDING_FOR:
        del pending[(machine_id, model_type)]
        return None
    return job_id


async def queue_training(request: web.Request, *, machine_id: str, model_type: str = "baseline",
                         trigger_type: str = "manual", reason: str = "",
                         start: datetime | None = None, end: datetime | None = None,
                         drivers: list[str] | None = None) -> TrainCommand:
    """Put a training command on ``enms.commands`` (503 without a publisher); remember it
    as pending."""
    cmd = TrainCommand(training_job_id=str(uuid.uuid4()), requested_at=datetime.now(UTC),
                       window_days=request.app[SETTINGS].retrain_window_days,
                       machine_id=machine_id, model_type=model_type, trigger_type=trigger_type,
                       reason=reason, start=start, end=end, drivers=drivers)
    await publish(request, COMMANDS, cmd.machine_id, cmd)
    request.app[PENDING][(cmd.machine_id, cmd.model_type)] = (cmd.training_job_id,
                                                              cmd.requested_at)
    return cmd
