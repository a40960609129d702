"""Model performance: retrain trigger, metrics trend, training jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from api.context import jobs, registry
from api.errors import json_response, not_found, unprocessable
from api.params import choice, machine_param, text_param
from api.training import MODEL_TYPES, TRIGGER_TYPES, queue_training, running_job

routes = web.RouteTableDef()
PREFIX = "/api/v1/model-performance"


@routes.post(f"{PREFIX}/retrain/trigger")
async def retrain_trigger(request: web.Request) -> web.Response:
    """Queue a retrain; ``triggered: false`` with the running job's id if one is running."""
    q = request.query
    machine = machine_param(q.get("machine_id"))
    model_type = choice(q.get("model_type"), "model_type", MODEL_TYPES, "baseline")
    trigger_type = choice(q.get("trigger_type"), "trigger_type", TRIGGER_TYPES, "manual")
    reason = text_param(q.get("reason"), "reason")
    js = (await jobs(request)).jobs
    if (running := running_job(request, js, machine.id, model_type)) is not None:
        return json_response({"triggered": False, "trigger_type": trigger_type,
                              "reason": "a training job for this machine and model type is "
                                        "already running", "training_job_id": running,
                              "estimated_completion": None})
    cmd = await queue_training(request, machine_id=machine.id, model_type=model_type,
                               trigger_type=trigger_type, reason=reason)
    return json_response({
        "triggered": True, "trigger_type": trigger_type, "reason": reason,
        "training_job_id": cmd.training_job_id,
        "estimated_completion": (cmd.requested_at + timedelta(seconds=30)).isoformat()})


@routes.get(f"{PREFIX}/jobs/{{job_id}}")
async def get_job(request: web.Request) -> web.Response:
    """One training job as the log tells it."""
    job = (await jobs(request)).jobs.jobs.get(request.match_info["job_id"])
    if job is None:
        raise not_found(f"training job {request.match_info['job_id']} not found")
    return json_response({
        "training_job_id": job.training_job_id, "machine_id": job.machine_id,
        "model_type": job.model_type, "status": job.status, "stage": job.stage,
        "progress_pct": job.progress_pct, "message": job.message,
        "trigger_type": job.trigger_type, "version": job.version, "accepted": job.accepted,
        "error": job.error, "started_at": job.started_at and job.started_at.isoformat(),
        "updated_at": job.updated_at and job.updated_at.isoformat(), "events": job.events})


@routes.get(f"{PREFIX}/metrics/trend")
async def metrics_trend(request: web.Request) -> web.Response:
    """Validated metrics of the versions trained in the last ``days``; 404 when none."""
    q = request.query
    machine = machine_param(q.get("machine_id"))
    model_type = choice(q.get("model_type"), "model_type", MODEL_TYPES, "baseline")
    try:
        days = int(q.get("days", "30"))
    except ValueError as e:
        raise unprocessable("days", "must be a whole number", "query") from e
    if not 1 <= days <= 3650:
        raise unprocessable("days", "must be between 1 and 3650", "query")
    reg = (await registry(request)).registry
    since = datetime.now(UTC) - timedelta(days=days)
    models = [m for m in reversed(reg.versions(machine.id, model_type)) if m.trained_at >= since]
    if not models:
        raise not_found(f"no {model_type} models of {machine.id} trained in the last {days} days")
    metrics = [{
        "model_version": m.version, "model_id": m.model_id, "evaluation_date": m.trained_at.isoformat(),
        "r_squared": m.metrics.r_squared, "rmse": m.metrics.rmse, "mae": m.metrics.mae,
        "cv_rmse": m.metrics.cv_rmse_validation, "nmbe": m.metrics.nmbe_validation,
        "r_squared_validation": m.metrics.r_squared_validation,
        "sample_count": m.metrics.training_samples, "data_completeness": m.metrics.data_coverage,
        "accepted": m.accepted, "drift_detected": None, "drift_score": None,
    } for m in models]
    cv = [c for m in models if (c := m.metrics.cv_rmse_validation) is not None]
    rate = (cv[-1] - cv[0]) / max(len(cv) - 1, 1) if len(cv) > 1 else 0.0
    direction = "stable" if abs(rate) < 0.5 else ("degrading" if rate > 0 else "improving")
    return json_response({"machine_id": machine.id, "model_type": model_type, "days": days,
                          "metrics": metrics, "trend_direction": direction,
                          "degradation_rate": round(rate, 3)})
