"""Folds of the log: the model registry (``enms.models``) and training jobs (``enms.training``).

Pure state machines: each view applies events in log order and answers questions. A process
that replays the topics from the beginning gets the same state: the log is the truth, these
are views of it (used by the worker and by every API process).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from schemas.energy import BaselineModel
from schemas.events import (
    AnomalyDetected,
    AnomalyResolved,
    Event,
    MaintenanceWindow,
    ModelActivated,
    ModelRolledBack,
    ModelTrained,
    TrainingCompleted,
    TrainingFailed,
    TrainingProgress,
    TrainingStarted,
)

Key = tuple[str, str]  # (machine_id, model_type)


class Registry:
    """Model versions per machine and model type, and which one is active.

    Examples
    --------
    >>> r = Registry()
    >>> r.next_version("m1", "baseline"), r.active_model("m1", "baseline") is None
    (1, True)
    """

    def __init__(self) -> None:
        self.models: dict[Key, dict[int, BaselineModel]] = {}
        self.active: dict[Key, int] = {}
        self.activations: dict[Key, list[tuple[datetime, int, str]]] = {}
        self._by_id: dict[str, BaselineModel] = {}

    def apply(self, e: ModelTrained | ModelActivated | ModelRolledBack) -> None:
        """Fold one registry event."""
        key = (e.machine_id or "", e.model_type)
        if isinstance(e, ModelTrained):
            self.models.setdefault(key, {})[e.version] = e.model
            self._by_id[e.model.model_id] = e.model
        else:
            self.active[key] = e.version
            self.activations.setdefault(key, []).append(
                (e.occurred_at, e.version, e.event_type))

    def versions(self, machine_id: str, model_type: str = "baseline") -> list[BaselineModel]:
        """All versions, newest first."""
        got = self.models.get((machine_id, model_type), {})
        return [got[v] for v in sorted(got, reverse=True)]

    def get(self, model_id: str) -> BaselineModel | None:
        """A model by its id."""
        return self._by_id.get(model_id)

    def active_model(self, machine_id: str, model_type: str = "baseline") -> BaselineModel | None:
        """The active version, if any."""
        key = (machine_id, model_type)
        v = self.active.get(key)
        return None if v is None else self.models.get(key, {}).get(v)

    def activated_at(self, machine_id: str, model_type: str = "baseline") -> datetime | None:
        """When the current active version became active."""
        hist = self.activations.get((machine_id, model_type))
        return hist[-1][0] if hist else None

    def next_version(self, machine_id: str, model_type: str = "baseline") -> int:
        """The version number the next trained model gets."""
        return max(self.models.get((machine_id, model_type), {0: None}), default=0) + 1

    def rollback_target(self, machine_id: str, model_type: str = "baseline") -> BaselineModel | None:
        """The newest accepted version older than the active one."""
        current = self.active.get((machine_id, model_type))
        if current is None:
            return None
        for m in self.versions(machine_id, model_type):
            if m.version < current and m.accepted:
                return m
        return None


@dataclass
class Job:
    """What the log says of one training job."""

    training_job_id: str
    machine_id: str
    model_type: str
    status: str = "running"  # running, completed, failed
    trigger_type: str = ""
    stage: str = "started"
    progress_pct: float = 0.0
    message: str = ""
    started_at: datetime | None = None
    updated_at: datetime | None = None
    version: int | None = None
    accepted: bool | None = None
    error: str | None = None
    events: list[str] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        """Whether a completed or failed event was seen."""
        return self.status in {"completed", "failed"}


class Jobs:
    """Training jobs folded from ``enms.training``."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}

    def apply(self, e: Event) -> Job | None:
        """Fold one training event; return the job it touched."""
        if not isinstance(e, TrainingStarted | TrainingProgress | TrainingCompleted
                          | TrainingFailed):
            return None
        job = self.jobs.get(e.training_job_id)
        if job is None:
            job = self.jobs[e.training_job_id] = Job(
                training_job_id=e.training_job_id, machine_id=e.machine_id or "",
                model_type=e.model_type, started_at=e.occurred_at)
        job.updated_at = e.occurred_at
        job.events.append(e.event_type)
        if job.terminal:
            return job  # a re-delivered event after the end changes nothing
        if isinstance(e, TrainingStarted):
            job.trigger_type = e.trigger_type
        elif isinstance(e, TrainingProgress):
            job.stage, job.progress_pct, job.message = e.stage, e.progress_pct, e.message
        elif isinstance(e, TrainingCompleted):
            job.status, job.progress_pct, job.stage = "completed", 100.0, "completed"
            job.version, job.accepted = e.version, e.accepted
        else:
            job.status, job.error, job.stage = "failed", e.error, "failed"
        return job

    def running(self, machine_id: str, model_type: str) -> Job | None:
        """The job of this machine and model type that has started and not ended."""
        for job in self.jobs.values():
            if (job.machine_id, job.model_type) == (machine_id, model_type) and not job.terminal:
                return job
        return None


@dataclass
class Anomaly:
    """An anomaly and its resolution, as the log tells them."""

    event: AnomalyDetected
    resolved_at: datetime | None = None
    resolution_notes: str | None = None


class Anomalies:
    """Anomalies folded from ``enms.anomalies`` (online and batch detections)."""

    def __init__(self) -> None:
        self.by_id: dict[str, Anomaly] = {}

    def apply(self, e: Event) -> None:
        """Fold one event of the anomalies topic."""
        if isinstance(e, AnomalyDetected):
            self.by_id.setdefault(e.event_id, Anomaly(e))
        elif isinstance(e, AnomalyResolved) and e.anomaly_id in self.by_id:
            a = self.by_id[e.anomaly_id]
            a.resolved_at, a.resolution_notes = e.occurred_at, e.resolution_notes

    def query(self, *, machine_id: str | None = None, severity: str | None = None,
              start: datetime | None = None, end: datetime | None = None,
              resolved: bool | None = None, limit: int = 50) -> list[Anomaly]:
        """Newest first, filtered."""
        out = [a for a in self.by_id.values()
               if (machine_id is None or a.event.machine_id == machine_id)
               and (severity is None or a.event.severity == severity)
               and (start is None or a.event.occurred_at >= start)
               and (end is None or a.event.occurred_at <= end)
               and (resolved is None or (a.resolved_at is not None) == resolved)]
        out.sort(key=lambda a: a.event.occurred_at, reverse=True)
        return out[:limit]


class Maintenance:
    """The latest maintenance window of each machine, from ``enms.maintenance``.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> m = Maintenance()
    >>> m.apply(MaintenanceWindow(event_id="a", occurred_at=t, machine_id="m1", start=t,
    ...                           end=t.replace(hour=4), reason="belt change"))
    >>> m.window("m1").covers(t.replace(hour=3)), m.window("m2")
    (True, None)
    """

    def __init__(self) -> None:
        self.windows: dict[str, MaintenanceWindow] = {}

    def apply(self, e: MaintenanceWindow) -> None:
        """Fold one record: the machine's window is now this one."""
        if e.machine_id:
            self.windows[e.machine_id] = e

    def window(self, machine_id: str) -> MaintenanceWindow | None:
        """The machine's latest window (past, current or planned), if any."""
        return self.windows.get(machine_id)
