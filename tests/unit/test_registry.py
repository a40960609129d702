"""The registry and jobs folds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict

from detectors.baseline import _example_model
from detectors.registry import Jobs, Registry
from schemas.energy import BaselineModel
from schemas.events import (
    ModelActivated,
    ModelRolledBack,
    ModelTrained,
    RegistryEvent,
    TrainingCompleted,
    TrainingProgress,
    TrainingStarted,
)

T = datetime(2032, 1, 1, tzinfo=UTC)
M = "c0000000-0000-0000-0000-000000000007"


def present(model: BaselineModel | None) -> BaselineModel:
    assert model is not None
    return model


def trained(v: int, accepted: bool = True) -> ModelTrained:
    import msgspec

    model = msgspec.structs.replace(_example_model(), version=v, model_id=f"id{v}",
                                    machine_id=M, accepted=accepted)
    return ModelTrained(event_id=f"t{v}", occurred_at=T + timedelta(hours=v), machine_id=M,
                        model_type="baseline", version=v, model=model)


def activated(v: int) -> ModelActivated:
    return ModelActivated(event_id=f"a{v}", occurred_at=T + timedelta(hours=v, minutes=1),
                          machine_id=M, model_type="baseline", version=v, model_id=f"id{v}")


def test_versions_active_next_and_rollback() -> None:
    r = Registry()
    for e in (trained(1), activated(1), trained(2, accepted=False), trained(3), activated(3)):
        r.apply(e)
    assert [m.version for m in r.versions(M)] == [3, 2, 1]
    assert present(r.active_model(M)).version == 3
    assert r.next_version(M) == 4
    assert present(r.get("id2")).accepted is False
    assert present(r.rollback_target(M)).version == 1  # 2 failed acceptance
    r.apply(ModelRolledBack(event_id="r", occurred_at=T + timedelta(hours=5), machine_id=M,
                            model_type="baseline", version=1, model_id="id1", from_version=3))
    assert present(r.active_model(M)).version == 1
    assert r.activated_at(M) == T + timedelta(hours=5)


def test_replaying_the_same_log_gives_the_same_registry() -> None:
    log: list[RegistryEvent] = [trained(1), activated(1), trained(2), activated(2)]
    a, b = Registry(), Registry()
    for e in log:
        a.apply(e)
    for e in log:
        b.apply(e)
    assert a.active == b.active and a.models == b.models


class _JobFields(TypedDict):
    occurred_at: datetime
    machine_id: str
    training_job_id: str
    job_id: str
    model_type: str


def _job_events(job: str) -> tuple[TrainingStarted, TrainingProgress, TrainingCompleted]:
    common = _JobFields(occurred_at=T, machine_id=M, training_job_id=job, job_id=job,
                        model_type="baseline")
    return (TrainingStarted(event_id="s", **common),
            TrainingProgress(event_id="p", stage="data_loaded", progress_pct=20, **common),
            TrainingCompleted(event_id="c", version=1, accepted=True, **common))


def test_jobs_running_then_terminal_and_redelivery_changes_nothing() -> None:
    js = Jobs()
    started, progress, done = _job_events("j1")
    js.apply(started)
    job = js.running(M, "baseline")
    assert job is not None and job.training_job_id == "j1"
    js.apply(progress)
    assert js.jobs["j1"].progress_pct == 20
    js.apply(done)
    assert js.running(M, "baseline") is None and js.jobs["j1"].status == "completed"
    js.apply(progress)  # a late re-delivery
    assert js.jobs["j1"].status == "completed"
