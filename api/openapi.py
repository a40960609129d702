"""The OpenAPI 3.1 description of the REST API, served at ``GET /api/v1/openapi.json``.

Built once per settings, from code: the record schemas come from the msgspec structs
(`schemas.readings.Reading`, `schemas.machines.Machine`, `schemas.energy.BaselineModel`,
the events of `schemas.events`), and every limit (batch size, body size, windows, text
length, dates, enums) from the constants the views check. ``tests/api/test_openapi.py``
keeps it true: every route of the app is described, every described operation exists,
and schemathesis checks the app's answers against it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import typing
from datetime import timedelta
from typing import Any

import msgspec
from aiohttp import web

from api.anomaly import LONGEST_DETECT, LONGEST_SEARCH
from api.baseline import LONGEST_DEVIATION, LONGEST_TRAINING
from api.errors import json_response
from api.hub import GROUPS
from api.keys import SETTINGS
from api.maintenance import LONGEST as LONGEST_MAINTENANCE
from api.params import EARLIEST, LATEST, MAX_TEXT
from api.training import MODEL_TYPES, TRIGGER_TYPES
from api.views import MAX_BATCH
from schemas.energy import BaselineModel
from schemas.events import AnyEvent, Severity
from schemas.jsondepth import MAX_DEPTH
from schemas.machines import MACHINES, Machine
from schemas.readings import Reading
from streams.settings import Settings
from streams.topics import READINGS

routes = web.RouteTableDef()
PATH = "/api/v1/openapi.json"
JSON = "application/json"
SEVERITIES = list(typing.get_args(Severity))
#: A machine of the catalogue, the example of every ``machine_id``.
EXAMPLE_MACHINE = MACHINES[2]  # Motor-Line-A: 30 kW, a reading every 30 s


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(required: str = "", **props: Any) -> dict[str, Any]:
    """An object with these properties; ``required`` names some of them (space-separated),
    ``"*"`` all. Other properties are allowed: clients must ignore what they do not know."""
    names = list(props) if required == "*" else required.split()
    out: dict[str, Any] = {"type": "object", "properties": props}
    if names:
        out["required"] = names
    return out


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
TEXT = {"type": "string", "maxLength": MAX_TEXT}
_TIMES = (f"ISO 8601 time from {EARLIEST.date()} to before {LATEST.date()}; without a zone "
          "it is UTC (422 when malformed or outside)")


def _days(d: timedelta) -> str:
    return f"{d.days} days"


# -- parameters ------------------------------------------------------------------------------


#: A ``machine_id`` a view requires (`api.params.machine_param`: 422 when empty).
MACHINE_ID = {"type": "string", "minLength": 1, "examples": [EXAMPLE_MACHINE.id],
              "description": "A machine of the catalogue (404 when unknown)."}


def _machine(where: str, required: bool) -> dict[str, Any]:
    """The ``machine_id`` parameter; an optional one that is empty is taken as absent."""
    needed = required and where == "query"
    return {"name": "machine_id", "in": where, "required": required or where == "path",
            "description": "A machine of the catalogue (`GET /api/v1/machines`); 404 when "
                           "unknown" + ("; 422 when missing or empty." if needed else "."),
            "schema": {"type": "string", "minLength": 1} if needed else STR,
            "example": EXAMPLE_MACHINE.id}


def _query(name: str, schema: dict[str, Any], description: str,
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema}


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or STR}


def _flag(name: str, description: str) -> dict[str, Any]:
    return _query(name, {"type": "boolean"}, description)


_MODEL_TYPE = _query("model_type", {"type": "string", "enum": list(MODEL_TYPES),
                                    "default": MODEL_TYPES[0]}, "Model type (422 otherwise).")
_REASON = _query("reason", TEXT, f"Free text, at most {MAX_TEXT} characters (422 otherwise).")


# -- responses -------------------------------------------------------------------------------


def _json(schema: dict[str, Any], description: str,
          headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _error(description: str, schema: str = "Error") -> dict[str, Any]:
    return _json(_ref(schema), description)


def _responses(ok: dict[str, Any] | None, *codes: str, **special: dict[str, Any]) -> dict[str, Any]:
    """``200: ok``, then the shared error responses named by ``codes``; ``special`` maps a
    status (``s409``) to its own response."""
    out: dict[str, Any] = {} if ok is None else {"200": ok}
    for code in codes:
        out[code] = {"$ref": f"#/components/responses/{_SHARED[code]}"}
    for key, response in special.items():
        out[key.removeprefix("s")] = response
    return dict(sorted(out.items()))


_SHARED = {"404": "NotFound", "413": "TooLarge", "415": "NotJson", "422": "Unprocessable",
           "503": "Unavailable"}
#: What every operation that takes a body may answer before a view runs (api.errors).
_BODY = ("413", "415")


def _job_error(description: str) -> dict[str, Any]:
    return _json(_obj("detail training_job_id", detail=STR, training_job_id=STR), description)


def _body(schema: dict[str, Any], description: str, required: bool = True,
          example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": required, "description": description, "content": {JSON: media}}


# -- schemas ---------------------------------------------------------------------------------


def _first_paragraph(schema: dict[str, Any]) -> None:
    """Keep the summary of a docstring-made description (drop its doctest examples)."""
    if "description" in schema:
        schema["description"] = schema["description"].split("\n\n")[0]


def _record_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """msgspec's JSON Schemas (2020-12, as OpenAPI 3.1 takes them) of the records, and the
    schema of one event (a union tagged by ``event_type``)."""
    (*_, event), components = msgspec.json.schema_components(
        [Reading, Machine, BaselineModel, AnyEvent], ref_template="#/components/schemas/{name}")
    for schema in components.values():
        _first_paragraph(schema)
    components["Reading"]["properties"]["machine_id"]["examples"] = [EXAMPLE_MACHINE.id]
    return components, event


def _model(**extra: Any) -> dict[str, Any]:
    """A model as the views answer it (`api.baseline.model_json`): the stored record, plus
    the old clients' names of its figures."""
    return {"allOf": [_ref("BaselineModel"), _obj(
        "model_version r_squared rmse mae cv_rmse nmbe training_samples "
        "meets_quality_threshold training_start_date training_end_date "
        + " ".join(k for k in extra if k != "explanation"),
        model_version=INT, r_squared=NUM, rmse=NUM, mae=NUM, cv_rmse=_null(NUM),
        nmbe=_null(NUM), training_samples=INT, meets_quality_threshold=BOOL,
        training_start_date=TIME, training_end_date=TIME, **extra)]}


def _schemas() -> dict[str, Any]:
    components, event = _record_schemas()
    severity = {"type": "string", "enum": SEVERITIES}
    row = _obj("*", id=STR, machine_id=_null(STR), machine_name=STR, machine_type=_null(STR),
               detected_at=TIME, anomaly_type=STR, severity=severity, metric_name=STR,
               metric_value=NUM, expected_value=_null(NUM), deviation_percent=_null(NUM),
               deviation_std_dev=NUM, confidence_score=NUM, detection_method=STR,
               explanation=STR, is_resolved=BOOL, resolved_at=_null(TIME),
               resolution_notes=_null(STR))
    period = _obj("start end", start=TIME, end=TIME)
    window = _obj("start end reason id", start=TIME, end=TIME, reason=STR, id=STR)
    counts = {"type": "object", "additionalProperties": INT}
    return {
        **components,
        "Event": {"description": "An event of `schemas/events.py`, tagged by `event_type`.",
                  **event},
        "Error": _obj("detail", detail=STR),
        "ValidationError": _obj("detail", detail={"type": "array", "minItems": 1, "items": _obj(
            "*", loc={"type": "array", "items": {"type": ["string", "integer"]}},
            field=STR, msg=STR, type={"const": "value_error"})}),
        "TooLarge": _obj("detail max_bytes", detail=STR, max_bytes=INT),
        "Health": _obj(
            "status kafka redis websocket hub bridge",
            status={"type": "string", "enum": ["healthy", "degraded"]},
            kafka=_obj("connected bootstrap", connected=BOOL, bootstrap=STR),
            redis=_obj("connected", connected=BOOL),
            websocket=_obj("connections by_type delivered duplicates_dropped", connections=INT,
                           by_type=counts, delivered=INT, duplicates_dropped=INT),
            hub=_obj("running restarts last_error malformed", running=BOOL, restarts=INT,
                     last_error=_null(STR), malformed=INT),
            bridge=_null(_obj("running forwarded malformed skipped redis_errors "
                              "assigned_partitions", running=BOOL, forwarded=INT,
                              malformed=INT, skipped=INT, redis_errors=INT,
                              assigned_partitions={"type": "array", "items": STR})),
            requests=_obj("total by_status", total=INT, by_status=counts)),
        "ReadingsAccepted": _obj("accepted topic", accepted=INT, topic={"const": READINGS}),
        "ReadingsUnavailable": _obj(
            "detail", detail=STR,
            accepted={**INT, "description": "How many readings Kafka acknowledged."},
            accepted_indexes={"type": "array", "items": INT,
                              "description": "Their indexes in the batch."},
            not_confirmed={**INT, "description": "How many it did not (yet) acknowledge."}),
        "AnomalyRow": row,
        "AnomalyListing": _obj(
            "total_count filters anomalies", total_count=INT,
            filters=_obj("machine_id severity start end limit", machine_id=_null(STR),
                         severity=_null(severity), start=TIME, end=_null(TIME), limit=INT,
                         resolved=_null(BOOL)),
            anomalies={"type": "array", "items": _ref("AnomalyRow")}),
        "ActiveAnomalies": _obj(
            "total_count by_severity anomalies", total_count=INT,
            by_severity=_obj(" ".join(SEVERITIES), **dict.fromkeys(SEVERITIES, INT)),
            anomalies={"type": "array", "maxItems": 500, "items": _ref("AnomalyRow")}),
        "Detection": _obj(
            "*", machine_id=STR, machine_name=STR, detection_period=period,
            reference_period=_obj("start end hours", start=TIME, end=TIME, hours=INT),
            baseline_model_version=_null(INT), total_data_points=INT, anomalies_detected=INT,
            anomalies_saved=INT, contamination=NUM,
            anomalies={"type": "array", "items": _obj(
                "*", id=STR, detected_at=TIME, anomaly_type=STR, severity=severity,
                metric_name=STR, metric_value=NUM, expected_value=_null(NUM),
                deviation_percent=_null(NUM), confidence_score=NUM, explanation=STR)}),
        "Resolution": _obj("*", id=STR, machine_id=_null(STR), anomaly_type=STR,
                           severity=severity, detected_at=TIME, resolved_at=TIME,
                           resolution_notes=STR),
        "Model": _model(),
        "TrainedModel": _model(training_job_id=STR),
        "ModelWithExplanation": _model(explanation={
            **STR, "description": "Only with `include_explanation=true`."}),
        "Models": _obj("*", machine_id=STR, total_models=INT, active_version=_null(INT),
                       models={"type": "array",
                               "items": {"allOf": [_ref("Model"), _obj("is_active",
                                                                         is_active=BOOL)]}}),
        "Prediction": _obj(
            "*", machine_id=STR, predicted_energy_kwh=NUM, model_version=INT, model_id=STR,
            features=_obj("production_count throughput_units_per_hour outdoor_temp_c timestamp",
                          production_count=_null(NUM), throughput_units_per_hour=_null(NUM),
                          outdoor_temp_c=_null(NUM), timestamp=TIME),
            warnings={"type": "array", "items": STR}),
        "Deviation": _obj(
            "*", machine_id=STR, machine_name=STR, model_version=INT, period=period, hours=INT,
            actual_energy_kwh=NUM, predicted_energy_kwh=NUM, deviation_kwh=NUM,
            deviation_percent=_null(NUM),
            deviation_severity={"type": "string", "enum": ["normal", "warning", "critical"]},
            enpi=_null(NUM),
            hourly_deviations={"type": "array", "items": _obj(
                "*", hour=TIME, actual_kwh=NUM, predicted_kwh=NUM, deviation_kwh=NUM)}),
        "Activation": _obj("*", machine_id=STR, model_type=STR, active_version=INT,
                           previous_version=_null(INT)),
        "Rollback": _obj("*", machine_id=STR, model_type=STR, active_version=INT,
                         from_version=INT),
        "RetrainTrigger": _obj(
            "*", triggered=BOOL, trigger_type={"type": "string", "enum": list(TRIGGER_TYPES)},
            reason=STR, training_job_id=STR, estimated_completion=_null(TIME)),
        "TrainingJob": _obj(
            "*", training_job_id=STR, machine_id=STR, model_type=STR,
            status={**STR, "description": "running, completed or failed"}, stage=STR,
            progress_pct=NUM, message=STR, trigger_type=STR, version=_null(INT),
            accepted=_null(BOOL), error=_null(STR), started_at=_null(TIME),
            updated_at=_null(TIME), events={"type": "array", "items": STR}),
        "MetricsTrend": _obj(
            "*", machine_id=STR, model_type=STR, days=INT,
            metrics={"type": "array", "items": _obj(
                "*", model_version=INT, model_id=STR, evaluation_date=TIME, r_squared=NUM,
                rmse=NUM, mae=NUM, cv_rmse=_null(NUM), nmbe=_null(NUM),
                r_squared_validation=_null(NUM), sample_count=INT, data_completeness=NUM,
                accepted=BOOL, drift_detected=_null(BOOL), drift_score=_null(NUM))},
            trend_direction={"type": "string", "enum": ["stable", "degrading", "improving"]},
            degradation_rate=NUM),
        "Maintenance": _obj("*", machine_id=STR, machine_name=STR, in_maintenance=BOOL,
                            window=_null(window)),
        "WebSocketMessage": {"anyOf": [
            _obj("*", type={"const": "connection"}, status={"const": "connected"},
                 client_id=STR, connection_type={"enum": list(GROUPS)}, timestamp=TIME),
            _obj("*", type={"const": "pong"}, timestamp=TIME),
            _obj("*", type={**STR, "description": "the event's event_type"},
                 data=_ref("Event")),
        ]},
    }


# -- operations ------------------------------------------------------------------------------


#: aiohttp's limit on the request line (and on each header line): past it the server answers
#: 400 in text/plain before any view runs. A query of long non-ASCII text reaches it first.
MAX_LINE_BYTES = 8190
_LINE_TOO_LONG = {"text/plain": {"schema": {
    **STR, "description": f"Request line or a header line over {MAX_LINE_BYTES} bytes."}}}


def _op(tag: str, summary: str, description: str, responses: dict[str, Any],
        parameters: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, op_id: str = "") -> dict[str, Any]:
    if parameters and "400" not in responses:
        responses = dict(sorted({**responses, "400": {
            "$ref": "#/components/responses/LineTooLong"}}.items()))
    elif parameters:
        responses["400"]["content"].setdefault("text/plain", _LINE_TOO_LONG["text/plain"])
    out: dict[str, Any] = {"tags": [tag], "summary": summary, "operationId": op_id,
                           "description": description, "responses": responses}
    if parameters:
        out["parameters"] = parameters
    if body is not None:
        out["requestBody"] = body
    return out


def _example_reading() -> dict[str, Any]:
    m = EXAMPLE_MACHINE
    power = round(m.rated_power_kw * 2 / 3, 1)
    return {"machine_id": m.id, "timestamp": "2026-01-05T08:00:00+00:00", "power_kw": power,
            "energy_kwh": round(power * m.data_interval_seconds / 3600, 4),
            "production_count": 12.0, "outdoor_temp_c": 8.5}


def _readings(settings: Settings) -> dict[str, Any]:
    batch = {"type": "array", "maxItems": MAX_BATCH, "items": _ref("Reading")}
    limits = settings.limits()
    return {"post": _op(
        "readings", "Ingest a batch of readings",
        f"Validates a JSON array of readings (or `{{\"readings\": [...]}}`) and produces them "
        f"to `{READINGS}`, keyed by machine.\n\n"
        f"- At most {MAX_BATCH:,} readings per request (422 past it), and a body of at most "
        f"{settings.max_body_bytes:,} bytes (`max_body_bytes`; 413, refused from "
        "`Content-Length` or on `Expect: 100-continue` before it is sent, or while reading "
        f"it), nested at most {MAX_DEPTH} levels deep (422).\n"
        "- All or nothing: one invalid or implausible reading rejects the whole batch with "
        "422 naming its index and field (`loc: [\"body\", 3, \"power_kw\"]`); nothing is "
        "sent. A reading must name a known machine, carry a time zone, have finite numbers "
        "and pass the plausibility gates: not before 2000-01-01, at most "
        f"{limits.max_future_s:g} s ahead of the clock, power at most "
        f"{limits.max_power_factor:g} x the machine's rated power, energy consistent with "
        "power over the time since the machine's previous reading (its nominal interval at "
        f"least, {limits.max_energy_interval_s:g} s at most, and where that reading is not "
        "known), temperatures and driver ranges.\n"
        "- 202 once Kafka has acknowledged every reading.\n"
        "- 503 with `Retry-After` when Kafka cannot take them within "
        f"{settings.ingest_timeout_s:g} s (`ingest_timeout_s`): `accepted` readings were "
        "acknowledged, at `accepted_indexes` of the batch, `not_confirmed` were not (none "
        "was sent when Kafka was not reachable at all; without a Kafka producer yet the "
        "body has only `detail`). Re-sending the whole batch is always safe: a reading is "
        "identified by (machine_id, timestamp) and counted once.",
        _responses(None, "413", "415", "422",
                   s202=_json(_ref("ReadingsAccepted"), "Kafka acknowledged every reading."),
                   s503=_json(_ref("ReadingsUnavailable"),
                              "Kafka did not acknowledge the batch in time (or is not "
                              "connected yet).", {"Retry-After": {"$ref":
                                                  "#/components/headers/RetryAfter"}})),
        body=_body({"anyOf": [batch, _obj("readings", readings=batch)]},
                   "A JSON array of readings, or an object with them under `readings`.",
                   example=[_example_reading()]),
        op_id="postReadings")}


def _machines() -> dict[str, Any]:
    return {
        "/api/v1/machines": {"get": _op(
            "machines", "List the machine catalogue",
            "Machines, filtered by `is_active` and a case-insensitive `search` in name or "
            "type.", _responses(_json({"type": "array", "items": _ref("Machine")},
                                      "The machines that match."), "422"),
            [_flag("is_active", "Only active (or inactive) machines; 422 unless true or "
                                "false."),
             _query("search", STR, "Text to find in the name or type, case-insensitive.")],
            op_id="listMachines")},
        "/api/v1/machines/{machine_id}": {"get": _op(
            "machines", "One machine", "One machine of the catalogue.",
            _responses(_json(_ref("Machine"), "The machine."), "404"),
            [_machine("path", True)], op_id="getMachine")},
    }


def _maintenance() -> dict[str, Any]:
    shown = _json(_ref("Maintenance"), "The machine's window (null when it never had one).")
    machine = [_machine("path", True)]
    return {"/api/v1/machines/{machine_id}/maintenance": {
        "get": _op("maintenance", "The machine's latest maintenance window",
                   "Its latest window (past, current or planned) and whether it is in "
                   "maintenance now.", _responses(shown, "404", "503"), machine,
                   op_id="getMaintenance"),
        "put": _op(
            "maintenance", "Record a maintenance window",
            "A `maintenance_window` event on the compacted `enms.maintenance` (the latest per "
            "machine counts): while it lasts the machine's readings are neither judged nor "
            "learned from. `start` defaults to now; `end` must be after it and the window "
            f"may last at most {_days(LONGEST_MAINTENANCE)} (422 naming the field).",
            _responses(shown, "404", "422", "503", *_BODY), machine,
            _body(_obj("end", start=_null({**TIME, "description": _TIMES + "; default now"}),
                       end={**TIME, "description": _TIMES}, reason=_null(TEXT)),
                  "The window.", example={"start": "2026-01-05T08:00:00+00:00",
                                          "end": "2026-01-05T12:00:00+00:00",
                                          "reason": "belt change"}),
            op_id="putMaintenance"),
        "delete": _op(
            "maintenance", "End or cancel the maintenance window",
            "Ends the open window now, or cancels a planned one (its end becomes its start); "
            "404 when there is neither.", _responses(shown, "404", "503"), machine,
            op_id="deleteMaintenance"),
    }}


def _ws() -> dict[str, Any]:
    return {"/api/v1/ws/{connection_type}": {"get": _op(
        "websocket", "WebSocket of live events",
        "Upgrade to a WebSocket (`Connection: Upgrade`, `Upgrade: websocket`). The server "
        "sends `{\"type\": \"connection\", ...}` first, then every event of the type's group "
        "as `{\"type\": <event_type>, \"data\": <event>}` (schema `WebSocketMessage`); a "
        "text `ping` or `{\"type\": \"ping\"}` is answered with `{\"type\": \"pong\"}`. "
        "`dashboard` and `events` get every event, `anomalies` the anomaly events, "
        "`training` the training events.",
        {"101": {"description": "Switching Protocols: the WebSocket is open."},
         "400": {"description": "Not a WebSocket upgrade request (aiohttp's handshake "
                                "check), or a request line that is too long.",
                 "content": {"text/plain": {"schema": STR}}},
         "404": {"$ref": "#/components/responses/NotFound"}},
        [_path("connection_type", "Which events; 404 for any other.",
               {"type": "string", "enum": list(GROUPS)}),
         _query("client_id", STR, "Your id, echoed in the connection message (a uuid4 "
                                  "when missing)."),
         {**_machine("query", False), "description": "Only this machine's events (and "
                                                      "events of no machine)."}],
        op_id="websocket")}}


def _anomaly() -> dict[str, Any]:
    p = "/api/v1/anomaly"
    listing = _json(_ref("AnomalyListing"), "Anomalies, newest first.")

    def filters(default_days: int, max_limit: int) -> list[dict[str, Any]]:
        return [
            {**_machine("query", False), "description": "Only this machine's; 404 when "
                                                         "unknown."},
            _query("severity", {"type": "string", "enum": SEVERITIES}, "Only this severity "
                                                                       "(422 otherwise)."),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": max_limit,
                             "default": 50}, f"At most this many (1 to {max_limit}; 422 "
                                             "otherwise)."),
            _query("start_time", TIME, f"{_TIMES}. Default: {default_days} days before "
                                       f"`end_time` (or now). The period may last at most "
                                       f"{_days(LONGEST_SEARCH)}."),
            _query("end_time", TIME, f"{_TIMES}. Default: open (now). Must be after "
                                     "`start_time`."),
        ]
    detect_body = _obj(
        "machine_id start end",
        machine_id=MACHINE_ID,
        start={**TIME, "description": _TIMES},
        end={**TIME, "description": f"{_TIMES}; after `start`, at most "
                                    f"{_days(LONGEST_DETECT)} later."},
        contamination={"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 0.5,
                       "default": 0.1, "description": "Expected share of anomalous hours."},
        use_baseline={"type": "boolean", "default": True,
                      "description": "Judge against the active baseline's expectation."},
        reference_days={"type": "number", "minimum": 1, "maximum": 90, "default": 7,
                        "description": "Days before `start` the forest is fitted on."})
    return {
        f"{p}/detect": {"post": _op(
            "anomaly", "Batch anomaly detection over a period",
            "Isolation Forest over the period's hours (readings replayed from "
            f"`{READINGS}` by time), fitted on the `reference_days` before it. Found "
            "anomalies are saved as `anomaly_detected` events with stable ids: an identical "
            "second call saves nothing (`anomalies_saved: 0`). 400 when the period has no "
            "readings (or too few to fit).",
            _responses(_json(_ref("Detection"), "What was found."), "404", "422", "503",
                       *_BODY, s400=_error("No readings in the period, or too few to fit.")),
            body=_body(detect_body, "The period.", example={
                "machine_id": EXAMPLE_MACHINE.id, "start": "2026-01-05T00:00:00+00:00",
                "end": "2026-01-06T00:00:00+00:00"}),
            op_id="detectAnomalies")},
        f"{p}/recent": {"get": _op(
            "anomaly", "Recent anomalies",
            "The anomaly log (online and batch detections), newest first; by default the "
            "last 7 days of event time, at most 200.",
            _responses(listing, "404", "422", "503"), filters(7, 200),
            op_id="recentAnomalies")},
        f"{p}/search": {"get": _op(
            "anomaly", "Search anomalies", "As `recent`, plus `is_resolved`; by default the "
            "last 30 days, at most 500.", _responses(listing, "404", "422", "503"),
            [*filters(30, 500), _flag("is_resolved", "Only resolved (or unresolved) ones; "
                                                     "422 unless true or false.")],
            op_id="searchAnomalies")},
        f"{p}/active": {"get": _op(
            "anomaly", "Unresolved anomalies", "Unresolved anomalies (at most 500 listed) "
            "with counts by severity.",
            _responses(_json(_ref("ActiveAnomalies"), "Unresolved anomalies."), "404",
                       "503"),
            [{**_machine("query", False), "description": "Only this machine's; 404 when "
                                                         "unknown."}],
            op_id="activeAnomalies")},
        f"{p}/{{anomaly_id}}/resolve": {"put": _op(
            "anomaly", "Resolve an anomaly", "Records an `anomaly_resolved` event.",
            _responses(_json(_ref("Resolution"), "The resolution."), "404", "422", "503",
                       *_BODY),
            [_path("anomaly_id", "The anomaly's id (404 when unknown).")],
            _body(_obj(resolution_notes=_null(TEXT)), "Optional notes.", required=False),
            op_id="resolveAnomaly")},
    }


def _baseline(settings: Settings) -> dict[str, Any]:
    p = "/api/v1/baseline"
    limits = settings.limits()
    model_id = _path("model_id", "The model's id (404 when unknown).")
    lo, hi = limits.outdoor_temp_c
    features = _null(_obj(
        timestamp=_null({**TIME, "description": f"The hour; {_TIMES}; default the current "
                                                "hour."}),
        production_count=_null({"type": "number", "minimum": 0,
                                "maximum": limits.max_production_count}),
        throughput_units_per_hour=_null({"type": "number", "minimum": 0,
                                         "maximum": limits.max_throughput_units_per_hour}),
        outdoor_temp_c=_null({"type": "number", "minimum": lo, "maximum": hi})))
    return {
        f"{p}/train": {"post": _op(
            "baseline", "Train a baseline and wait for it",
            "Runs a training job through Kafka and waits for it (`training_timeout_s`, here "
            f"{settings.training_timeout_s:g} s; 504 with the job's id past it). 409 while a "
            "job of the machine runs, 400 with the reason when the job fails.",
            _responses(_json(_ref("TrainedModel"), "The trained model."), "404", "422",
                       "503", *_BODY, s400=_job_error("The job failed; `detail` says why."),
                       s409=_job_error("A job of this machine is running."),
                       s504=_job_error("The job did not finish in time; follow it on the "
                                       "training WebSocket.")),
            body=_body(_obj(
                "machine_id start_date end_date",
                machine_id=MACHINE_ID,
                start_date={**TIME, "description": _TIMES},
                end_date={**TIME, "description": f"{_TIMES}; after `start_date`, at most "
                                                 f"{_days(LONGEST_TRAINING)} later."},
                drivers=_null({"type": "array", "items": STR})), "The training window.",
                example={"machine_id": EXAMPLE_MACHINE.id,
                         "start_date": "2025-12-01T00:00:00+00:00",
                         "end_date": "2026-01-01T00:00:00+00:00"}),
            op_id="trainBaseline")},
        f"{p}/models": {"get": _op(
            "baseline", "A machine's baseline versions", "Newest first, the active one "
            "marked.", _responses(_json(_ref("Models"), "The versions."), "404", "422", "503"),
            [_machine("query", True)], op_id="listModels")},
        f"{p}/model/{{model_id}}": {"get": _op(
            "baseline", "One model", "The full record of one model.",
            _responses(_json(_ref("ModelWithExplanation"), "The model."), "404", "503"),
            [model_id, _flag("include_explanation", "Add a text explaining the model.")],
            op_id="getModel")},
        f"{p}/predict": {"post": _op(
            "baseline", "Predict an hour's energy",
            "Expected energy of one hour for the given drivers, from the active baseline "
            "(404 when there is none), with `warnings` for missing drivers.",
            _responses(_json(_ref("Prediction"), "The prediction."), "404", "422", "503",
                       *_BODY),
            body=_body(_obj("machine_id", machine_id=MACHINE_ID,
                            features=features), "The machine and the hour's drivers.",
                       example={"machine_id": EXAMPLE_MACHINE.id,
                                "features": {"production_count": 120, "outdoor_temp_c": 12}}),
            op_id="predictEnergy")},
        f"{p}/deviation": {"get": _op(
            "baseline", "Actual vs expected energy",
            "Totals, deviation in kWh and %, severity (5 % / 15 %), EnPI and hourly "
            "deviations over a period, from the hourly log and the active baseline (404 when "
            "there is none, or no hourly data).",
            _responses(_json(_ref("Deviation"), "The deviation."), "404", "422", "503"),
            [_machine("query", True),
             {**_query("start", TIME, _TIMES, required=True),
              "example": "2026-01-05T00:00:00+00:00"},
             {**_query("end", TIME, f"{_TIMES}; after `start`, at most "
                                    f"{_days(LONGEST_DEVIATION)} later.", required=True),
              "example": "2026-01-06T00:00:00+00:00"}],
            op_id="baselineDeviation")},
        f"{p}/model/{{model_id}}/activate": {"post": _op(
            "baseline", "Activate a model version",
            "Makes it the active one; a model that failed acceptance needs `force=true` "
            "(422 otherwise).",
            _responses(_json(_ref("Activation"), "The active version now."), "404", "422",
                       "503", *_BODY),
            [model_id, _flag("force", "Activate a model that failed acceptance."), _REASON],
            op_id="activateModel")},
        f"{p}/rollback": {"post": _op(
            "baseline", "Roll back to the previous accepted version",
            "The newest accepted version older than the active one becomes active; 404 when "
            "there is none.",
            _responses(_json(_ref("Rollback"), "The active version now."), "404", "422",
                       "503", *_BODY),
            [_machine("query", True), _MODEL_TYPE, _REASON], op_id="rollbackModel")},
    }


def _model_performance() -> dict[str, Any]:
    p = "/api/v1/model-performance"
    return {
        f"{p}/retrain/trigger": {"post": _op(
            "model-performance", "Queue a retrain",
            "Puts a training command on `enms.commands`; `triggered: false` with the running "
            "job's id while one runs.",
            _responses(_json(_ref("RetrainTrigger"), "Queued, or the running job."), "404",
                       "422", "503", *_BODY),
            [_machine("query", True), _MODEL_TYPE,
             _query("trigger_type", {"type": "string", "enum": list(TRIGGER_TYPES),
                                     "default": TRIGGER_TYPES[0]}, "Why (422 otherwise)."),
             _REASON], op_id="triggerRetrain")},
        f"{p}/jobs/{{job_id}}": {"get": _op(
            "model-performance", "A training job", "The job as the log tells it.",
            _responses(_json(_ref("TrainingJob"), "The job."), "404", "503"),
            [_path("job_id", "The training job's id (404 when unknown).")],
            op_id="getTrainingJob")},
        f"{p}/metrics/trend": {"get": _op(
            "model-performance", "Metrics trend of a machine's models",
            "Validated metrics of the versions trained in the last `days`, with "
            "`trend_direction` and `degradation_rate`; 404 when none.",
            _responses(_json(_ref("MetricsTrend"), "The trend."), "404", "422", "503"),
            [_machine("query", True), _MODEL_TYPE,
             _query("days", {"type": "integer", "minimum": 1, "maximum": 3650, "default": 30},
                    "How many days back (1 to 3650; 422 otherwise).")],
            op_id="metricsTrend")},
    }


def _components(settings: Settings) -> dict[str, Any]:
    retry = {"$ref": "#/components/headers/RetryAfter"}
    return {
        "schemas": _schemas(),
        "headers": {"RetryAfter": {"required": True, "description": "Seconds to wait.",
                                   "schema": {"type": "integer", "minimum": 0}}},
        "responses": {
            "LineTooLong": {"description": f"The URL (or a header) is longer than "
                                           f"{MAX_LINE_BYTES} bytes: aiohttp refuses it.",
                            "content": _LINE_TOO_LONG},
            "NotFound": _error("Unknown machine, model, job, anomaly or window."),
            "TooLarge": _error(f"The body is larger than {settings.max_body_bytes:,} bytes "
                               "(`max_body_bytes`).", "TooLarge"),
            "NotJson": _error("A request with a body must say `Content-Type: "
                              "application/json`."),
            "Unprocessable": _error("A parameter or body field is missing, malformed or out "
                                    "of range; `loc` and `field` name it.", "ValidationError"),
            "Unavailable": _json(_ref("Error"), "A dependency (the Kafka producer, or a view "
                                 "of a topic catching up) cannot answer now.",
                                 {"Retry-After": retry}),
        },
    }


@functools.cache
def document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API that ``settings`` configure (built once; do not
    change the dict you get)."""
    try:
        version = importlib.metadata.version("enms-stream")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    paths = {
        "/": {"get": _op("dashboard", "The live dashboard", "The dashboard page (its files "
                         "are under `/static/`).",
                         {"200": {"description": "The page.",
                                  "content": {"text/html": {"schema": STR}}}},
                         op_id="dashboard")},
        "/health": {"get": _op(
            "health", "Health", "Kafka, Redis, bridge, hub listener, WebSocket and request "
            "counts; 503 when Kafka or Redis is unreachable (no `Retry-After`).",
            {"200": _json(_ref("Health"), "Kafka and Redis are reachable."),
             "503": _json(_ref("Health"), "Degraded: Kafka or Redis is unreachable.")},
            op_id="health")},
        PATH: {"get": _op("meta", "This document", "The OpenAPI 3.1 description of the API.",
                          {"200": _json({"type": "object"}, "The document.")},
                          op_id="openapi")},
        **_machines(), **_maintenance(), "/api/v1/readings": _readings(settings), **_ws(),
        **_anomaly(), **_baseline(settings), **_model_performance(),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "EnMS Stream API", "version": version, "description": (
            "Real-time energy analytics: readings ingest, machines, anomalies, baselines, "
            "training, maintenance windows and live WebSockets.\n\nErrors are "
            "`{\"detail\": ...}`; a 422 names the failing place: `{\"detail\": [{\"loc\": "
            "[\"query\", \"limit\"], \"field\": \"limit\", \"msg\": ..., \"type\": "
            "\"value_error\"}]}`. Every POST, PUT or PATCH that carries a body must be "
            f"`application/json` (415 otherwise) and at most {settings.max_body_bytes:,} "
            "bytes (413). A 503 carries `Retry-After` (but that of `/health`). Behind the "
            "nginx of the old system the paths start with `/api/analytics`.")},
        "paths": dict(sorted(paths.items())),
        "components": _components(settings),
    }


@routes.get(PATH)
async def openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI 3.1 document."""
    return json_response(document(request.app[SETTINGS]))
