"""Baselines: train (waits for the job), list, read, predict, deviation, activate, roll back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from aiohttp import web

from api.context import history, jobs, publish, registry
from api.errors import error, json_object, json_response, not_found, unprocessable
from api.keys import SETTINGS
from api.params import choice, machine_param, text_param, time_param, window
from api.training import MODEL_TYPES, queue_training, running_job
from detectors.baseline import predict, predict_many
from detectors.registry import Job, Registry
from schemas.energy import BaselineModel, EnergyHourly
from schemas.events import ModelActivated, ModelRolledBack, registry_key, stable_event_id
from streams.topics import MODELS

routes = web.RouteTableDef()
PREFIX = "/api/v1/baseline"
#: Longest training window (three years of hourly rows: a fit of one takes well under 1 s).
LONGEST_TRAINING = timedelta(days=3 * 366)
#: Longest /deviation period (a year of hours).
LONGEST_DEVIATION = timedelta(days=366)


def model_json(m: BaselineModel) -> dict[str, object]:
    """A model as the old clients read it, plus the new figures."""
    d: dict[str, object] = msgspec.to_builtins(m)
    met = m.metrics
    d.update({"model_version": m.version, "r_squared": met.r_squared, "rmse": met.rmse,
              "mae": met.mae, "cv_rmse": met.cv_rmse_validation, "nmbe": met.nmbe_validation,
              "training_samples": met.training_samples,
              "meets_quality_threshold": m.accepted, "training_start_date": m.training_start.isoformat(),
              "training_end_date": m.training_end.isoformat()})
    return d


@routes.post(f"{PREFIX}/train")
async def train(request: web.Request) -> web.Response:
    """Run a training job through Kafka and wait for it (``training_timeout_s``)."""
    body = await json_object(request)
    machine = machine_param(body.get("machine_id"), "body")
    start = time_param(body.get("start_date"), "start_date", "body")
    end = time_param(body.get("end_date"), "end_date", "body")
    if start is None or end is None:
        raise unprocessable("start_date" if start is None else "end_date", "field required")
    window(start, end, LONGEST_TRAINING, "end_date", "body")
    drivers = body.get("drivers")
    if drivers is not None and not (isinstance(drivers, list)
                                    and all(isinstance(d, str) for d in drivers)):
        raise unprocessable("drivers", "must be a list of driver names")
    jobs_view = await jobs(request)
    js = jobs_view.jobs
    if (running := running_job(request, js, machine.id, "baseline")) is not None:
        raise error(web.HTTPConflict, "a training job for this machine is already running",
                    training_job_id=running)
    cmd = await queue_training(request, machine_id=machine.id, start=start, end=end,
                               drivers=drivers, reason="POST /baseline/train")

    def finished() -> Job | None:
        j = js.jobs.get(cmd.training_job_id)
        return j if j is not None and j.terminal else None

    try:
        job: Job = await jobs_view.wait_for(finished, request.app[SETTINGS].training_timeout_s)
    except TimeoutError as e:
        raise error(web.HTTPGatewayTimeout,
                    "training did not finish in time; follow it on the training WebSocket",
                    training_job_id=cmd.training_job_id) from e
    if job.status == "failed":
        raise error(web.HTTPBadRequest, job.error, training_job_id=cmd.training_job_id)
    reg = await registry(request)
    model = await reg.wait_for(
        lambda: next((m for m in reg.registry.versions(machine.id) if m.training_job_id ==
                      cmd.training_job_id), None), 30)
    return json_response({**model_json(model), "training_job_id": cmd.training_job_id})


@routes.get(f"{PREFIX}/models")
async def list_models(request: web.Request) -> web.Response:
    """Versions of a machine's baselines, newest first, with the active one marked."""
    machine = machine_param(request.query.get("machine_id"))
    reg = (await registry(request)).registry
    active = reg.active.get((machine.id, "baseline"))
    models = [{**model_json(m), "is_active": m.version == active}
              for m in reg.versions(machine.id)]
    return json_response({"machine_id": machine.id, "total_models": len(models),
                          "active_version": active, "models": models})


@routes.get(f"{PREFIX}/model/{{model_id}}")
async def get_model(request: web.Request) -> web.Response:
    """The full record of one model; ``include_explanation`` adds a text."""
    m = (await registry(request)).registry.get(request.match_info["model_id"])
    if m is None:
        raise not_found(f"model {request.match_info['model_id']} not found")
    out = model_json(m)
    if request.query.get("include_explanation", "").lower() in {"1", "true", "yes"}:
        terms = ", ".join(f"{v:+.4g} × {k}" for k, v in m.coefficients.items())
        verdict = "meets" if m.accepted else "does not meet"
        out["explanation"] = (
            f"Hourly energy ≈ {m.intercept:.4g} kWh {terms} ({m.kind}); validated CV(RMSE) "
            f"{m.metrics.cv_rmse_validation}%, NMBE {m.metrics.nmbe_validation}%; it {verdict} "
            "ASHRAE Guideline 14 / EnPI Lite acceptance" +
            ("" if m.accepted else ": " + "; ".join(m.reasons)))
    return json_response(out)


def _active_or_404(reg: Registry, machine_id: str) -> BaselineModel:
    m = reg.active_model(machine_id)
    if m is None:
        raise not_found(f"no active baseline for machine {machine_id}; train one first")
    return m


@routes.post(f"{PREFIX}/predict")
async def predict_view(request: web.Request) -> web.Response:
    """Expected energy of one hour for the given drivers, from the active baseline."""
    body = await json_object(request)
    machine = machine_param(body.get("machine_id"), "body")
    feats = body.get("features") or {}
    if not isinstance(feats, dict):
        raise unprocessable("features", "must be an object")
    model = _active_or_404((await registry(request)).registry, machine.id)
    hour = time_param(feats.get("timestamp"), "features.timestamp", "body") or datetime.now(
        UTC).replace(minute=0, second=0, microsecond=0)
    warnings = []
    values: dict[str, float | None] = {}
    limits = request.app[SETTINGS].limits()
    ranges = {"production_count": (0.0, limits.max_production_count),
              "throughput_units_per_hour": (0.0, limits.max_throughput_units_per_hour),
              "outdoor_temp_c": limits.outdoor_temp_c}
    for name, (lo, hi) in ranges.items():
        v = feats.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)
                              or not lo <= v <= hi):
            raise unprocessable(f"features.{name}", f"must be a number from {lo:g} to {hi:g}")
        values[name] = None if v is None else float(v)
    if values["production_count"] is None and values["throughput_units_per_hour"] is not None:
        values["production_count"] = values["throughput_units_per_hour"]
    for name in ("production_count", "outdoor_temp_c"):
        if values[name] is None:
            warnings.append(f"{name} not given; taken as 0" if name == "production_count"
                            else f"{name} not given; degree terms taken as 0")
    row = EnergyHourly(machine_id=machine.id, hour_start=hour, energy_kwh=0.0, readings=0,
                       coverage=1.0, mean_power_kw=0.0, max_power_kw=0.0,
                       production_count=values["production_count"] or 0.0,
                       outdoor_temp_c=values["outdoor_temp_c"])
    return json_response({"machine_id": machine.id,
                          "predicted_energy_kwh": predict(model, row, missing_as_zero=True),
                          "model_version": model.version, "model_id": model.model_id,
                          "features": {**values, "timestamp": hour.isoformat()},
                          "warnings": warnings})


@routes.get(f"{PREFIX}/deviation")
async def deviation(request: web.Request) -> web.Response:
    """Actual vs expected energy over a period, from the hourly log and the active baseline."""
    q = request.query
    machine = machine_param(q.get("machine_id"))
    start, end = time_param(q.get("start"), "start"), time_param(q.get("end"), "end")
    if start is None or end is None:
        raise unprocessable("end" if start else "start", "start and end are required", "query")
    window(start, end, LONGEST_DEVIATION)
    model = _active_or_404((await registry(request)).registry, machine.id)
    rows = await history(request).hourly(machine.id, start, end)
    if not rows:
        raise not_found(f"no hourly data of {machine.id} between {start} and {end}")
    # A year of hours through the model, and a row each: in a thread, off the loop.
    figures = await asyncio.to_thread(_deviation, model, rows)
    return json_response({
        "machine_id": machine.id, "machine_name": machine.name, "model_version": model.version,
        "period": {"start": start.isoformat(), "end": end.isoformat()}, "hours": len(rows),
        **figures})


def _deviation(model: BaselineModel, rows: Sequence[EnergyHourly]) -> dict[str, Any]:
    """Actual against expected energy of each hour and of the period."""
    expected = predict_many(model, rows, missing_as_zero=True)
    actual_total = sum(r.energy_kwh for r in rows)
    expected_total = float(expected.sum())
    dev = actual_total - expected_total
    pct = 100.0 * dev / expected_total if expected_total else None
    a = abs(pct or 0.0)
    return {
        "actual_energy_kwh": round(actual_total, 3), "predicted_energy_kwh": round(expected_total, 3),
        "deviation_kwh": round(dev, 3), "deviation_percent": None if pct is None else round(pct, 2),
        "deviation_severity": "normal" if a <= 5 else "warning" if a <= 15 else "critical",
        "enpi": round(actual_total / expected_total, 4) if expected_total else None,
        "hourly_deviations": [
            {"hour": r.hour_start.isoformat(), "actual_kwh": round(r.energy_kwh, 4),
             "predicted_kwh": round(float(e), 4), "deviation_kwh": round(r.energy_kwh - float(e), 4)}
            for r, e in zip(rows, expected, strict=True)]}


async def _send_registry_event(request: web.Request, e: ModelActivated | ModelRolledBack) -> None:
    await publish(request, MODELS, registry_key(e.machine_id or "", e.model_type), e)


@routes.post(f"{PREFIX}/model/{{model_id}}/activate")
async def activate(request: web.Request) -> web.Response:
    """Make a version active; one that failed acceptance needs ``?force=true``."""
    reg = (await registry(request)).registry
    m = reg.get(request.match_info["model_id"])
    if m is None:
        raise not_found(f"model {request.match_info['model_id']} not found")
    if not m.accepted and request.query.get("force", "").lower() != "true":
        raise unprocessable("force", "this model failed acceptance (" + "; ".join(m.reasons) +
                            "); pass force=true to activate it anyway", "query")
    prev = reg.active.get((m.machine_id, m.model_type))
    now = datetime.now(UTC)
    e = ModelActivated(event_id=stable_event_id("model_activated", m.model_id, now.isoformat()),
                       occurred_at=now, machine_id=m.machine_id, model_type=m.model_type,
                       version=m.version, model_id=m.model_id, previous_version=prev,
                       reason=text_param(request.query.get("reason"), "reason",
                                         default="activated through the API"))
    await _send_registry_event(request, e)
    return json_response({"machine_id": m.machine_id, "model_type": m.model_type,
                          "active_version": m.version, "previous_version": prev})


@routes.post(f"{PREFIX}/rollback")
async def rollback(request: web.Request) -> web.Response:
    """Go back to the newest accepted version older than the active one."""
    machine = machine_param(request.query.get("machine_id"))
    model_type = choice(request.query.get("model_type"), "model_type", MODEL_TYPES, "baseline")
    reg = (await registry(request)).registry
    current = reg.active.get((machine.id, model_type))
    target = reg.rollback_target(machine.id, model_type)
    if current is None or target is None:
        raise not_found(f"nothing to roll back to for {machine.id} ({model_type})")
    now = datetime.now(UTC)
    e = ModelRolledBack(event_id=stable_event_id("model_rolled_back", target.model_id,
                                                 now.isoformat()),
                        occurred_at=now, machine_id=machine.id, model_type=model_type,
                        version=target.version, model_id=target.model_id, from_version=current,
                        reason=text_param(request.query.get("reason"), "reason",
                                          default="rolled back through the API"))
    await _send_registry_event(request, e)
    return json_response({"machine_id": machine.id, "model_type": model_type,
                          "active_version": target.version, "from_version": current})
