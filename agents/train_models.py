"""Run training jobs from ``enms.commands``: load, fit, validate, register; report progress."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from detectors.baseline import fit_baseline
from schemas.energy import BaselineModel, EnergyHourly
from schemas.events import (
    EVENT_NAMESPACE,
    Event,
    ModelActivated,
    ModelTrained,
    TrainCommand,
    TrainingCompleted,
    TrainingFailed,
    TrainingProgress,
    TrainingStarted,
    decode_command,
    encode,
    registry_key,
    stable_event_id,
)
from schemas.machines import MACHINES
from schemas.readings import InvalidRecord
from streams.app import (
    app,
    commands_topic,
    dead_letters,
    jobs_view,
    models_topic,
    output_topics,
    registry_view,
    settings,
)
from streams.history import load_hourly
from streams.topics import TRAINING

log = logging.getLogger(__name__)


class Job:
    """Builds one job's events (stable ids: a re-run after a crash repeats, not adds)."""

    def __init__(self, cmd: TrainCommand) -> None:
        self.cmd = cmd

    def _common(self, event_type: str, *parts: object) -> dict[str, Any]:
        c = self.cmd
        return {"event_id": stable_event_id(event_type, c.training_job_id, *parts),
                "occurred_at": datetime.now(UTC), "machine_id": c.machine_id,
                "training_job_id": c.training_job_id, "job_id": c.training_job_id,
                "model_type": c.model_type}

    def started(self) -> TrainingStarted:
        return TrainingStarted(**self._common("training_started"),
                               trigger_type=self.cmd.trigger_type, reason=self.cmd.reason)

    def progress(self, stage: str, pct: float, message: str) -> TrainingProgress:
        return TrainingProgress(**self._common("training_progress", stage),
                                stage=stage, progress_pct=pct, message=message)

    def completed(self, version: int, accepted: bool, reasons: list[str],
                  metrics: dict[str, object]) -> TrainingCompleted:
        return TrainingCompleted(**self._common("training_completed"),
                                 version=version, accepted=accepted, reasons=reasons,
                                 metrics=metrics)

    def failed(self, error: str) -> TrainingFailed:
        return TrainingFailed(**self._common("training_failed"),
                              error=error, error_message=error)


async def emit(e: Event) -> None:
    """Send a training event, keyed by machine."""
    await output_topics[TRAINING].send(key=(e.machine_id or "").encode(), value=encode(e))


async def fit_with_progress(job: Job, rows: list[EnergyHourly], version: int) -> BaselineModel:
    """Fit in a thread (the event loop keeps serving) and relay its stages as events."""
    loop = asyncio.get_running_loop()
    stages: asyncio.Queue[tuple[str, float, str]] = asyncio.Queue()
    c = job.cmd

    def relay(stage: str, pct: float, message: str) -> None:  # called in the fit's thread
        loop.call_soon_threadsafe(stages.put_nowait, (stage, pct, message))

    fut = loop.run_in_executor(None, lambda: fit_baseline(
        rows, machine_id=c.machine_id, version=version,
        model_id=str(uuid.uuid5(EVENT_NAMESPACE, f"model|{c.training_job_id}")),
        training_job_id=c.training_job_id, trained_at=datetime.now(UTC), drivers=c.drivers,
        progress=relay))
    while not fut.done() or not stages.empty():
        getter = asyncio.ensure_future(stages.get())
        waiting: set[asyncio.Future[Any]] = {fut, getter}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            stage, pct, message = getter.result()
            # The fit reports 0-100 of its own work: that is 20-90 % of the job (data loading
            # before it, registering after it).
            await emit(job.progress(stage, round(20.0 + 0.7 * pct, 1), message))
        else:
            getter.cancel()
    return await fut


async def run(cmd: TrainCommand) -> None:
    """One job, from start to its single terminal event."""
    job = Job(cmd)
    await emit(job.started())
    try:
        rows = await load_hourly(settings, cmd.machine_id, cmd.start, cmd.end)
        if cmd.start is None and rows:  # the newest window_days of data
            cutoff = rows[-1].hour_start - timedelta(days=cmd.window_days)
            rows = [r for r in rows if r.hour_start > cutoff]
        await emit(job.progress("data_loaded", 20.0,
                                f"{len(rows)} hours of {cmd.machine_id} loaded"))
        version = registry_view.registry.next_version(cmd.machine_id, cmd.model_type)
        model = await fit_with_progress(job, rows, version)
    except ValueError as e:  # InsufficientData, bad drivers: the job's own fault
        await emit(job.failed(str(e)))
        return
    except Exception as e:
        log.exception("training job %s failed", cmd.training_job_id)
        await emit(job.failed(f"internal error: {e!r}"))
        return
    now = datetime.now(UTC)
    trained = ModelTrained(event_id=stable_event_id("model_trained", model.model_id),
                           occurred_at=now, machine_id=cmd.machine_id,
                           model_type=cmd.model_type, version=version, model=model)
    await models_topic.send(key=registry_key(cmd.machine_id, cmd.model_type, version).encode(),
                            value=encode(trained))
    if model.accepted and cmd.activation == "auto":
        prev = registry_view.registry.active.get((cmd.machine_id, cmd.model_type))
        activated = ModelActivated(
            event_id=stable_event_id("model_activated", model.model_id),
            occurred_at=now, machine_id=cmd.machine_id, model_type=cmd.model_type,
            version=version, model_id=model.model_id, previous_version=prev,
            reason=f"passed acceptance ({cmd.trigger_type} training)")
        await models_topic.send(key=registry_key(cmd.machine_id, cmd.model_type).encode(),
                                value=encode(activated))
    m = model.metrics
    await emit(job.completed(version, model.accepted, list(model.reasons), {
        "version": version, "model_id": model.model_id, "kind": model.kind,
        "r_squared": m.r_squared, "cv_rmse": m.cv_rmse_validation, "nmbe": m.nmbe_validation,
        "samples": m.training_samples, "activated": model.accepted and cmd.activation == "auto"}))


@app.agent(commands_topic)
async def train_models(stream: faust.StreamT[bytes]) -> None:
    """Commands in (one partition: one job at a time), training events out."""
    async for event in stream.events():
        try:
            cmd = decode_command(event.message.value)
        except InvalidRecord as e:
            await dead_letters.send([dead_letters.of(event, e.reason, e.field)])
            continue
        await asyncio.wait_for(registry_view.ready.wait(), 60)
        await asyncio.wait_for(jobs_view.ready.wait(), 60)
        done = jobs_view.jobs.jobs.get(cmd.training_job_id)
        if done is not None and done.terminal:
            log.info("training job %s already ended (%s); skipped", cmd.training_job_id,
                     done.status)
            continue  # re-delivered after its end (worker died before committing)
        log.info("training job %s (%s, %s) from %s[%s]@%s", cmd.training_job_id,
                 cmd.machine_id, cmd.trigger_type, event.message.topic,
                 event.message.partition, event.message.offset)
        _running.add(cmd.training_job_id)
        try:
            await run(cmd)
        finally:
            _running.discard(cmd.training_job_id)
        log.info("training job %s done", cmd.training_job_id)


_running: set[str] = set()


@app.timer(10.0, on_leader=True)
async def fail_stale_jobs() -> None:
    """Fail jobs that went silent: their worker died and no replay resumed them.

    Normally a crashed job is resumed (its command was not committed, so it is delivered
    again); this is the backstop that keeps a job from showing "running" forever.
    """
    if not jobs_view.ready.is_set():
        return
    now = datetime.now(UTC)
    for job in list(jobs_view.jobs.jobs.values()):
        if job.terminal or job.training_job_id in _running or job.updated_at is None:
            continue
        silent = (now - job.updated_at).total_seconds()
        if silent < settings.job_stale_after_s:
            continue
        log.warning("training job %s silent for %.0f s; failing it", job.training_job_id, silent)
        await emit(TrainingFailed(
            event_id=stable_event_id("training_failed", job.training_job_id), occurred_at=now,
            machine_id=job.machine_id, training_job_id=job.training_job_id,
            job_id=job.training_job_id, model_type=job.model_type,
            error=f"no progress for {silent:.0f} s: the worker running it stopped",
            error_message="worker stopped"))


if settings.retrain_schedule_s > 0:

    @app.timer(settings.retrain_schedule_s, on_leader=True)
    async def scheduled_retrain() -> None:
        """Retrain every machine's baseline on schedule (default weekly), by the same path."""
        now = datetime.now(UTC)
        for m in MACHINES:
            cmd = TrainCommand(
                training_job_id=str(uuid.uuid5(EVENT_NAMESPACE, f"scheduled|{m.id}|{now.isoformat()}")),
                machine_id=m.id, trigger_type="scheduled", reason="scheduled retrain",
                window_days=settings.retrain_window_days, requested_at=now)
            await commands_topic.send(key=m.id.encode(), value=encode(cmd))
