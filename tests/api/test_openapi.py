"""The OpenAPI document (`api.openapi`) is true: it describes every route of the app and
nothing else, it is valid OpenAPI 3.1, and the app answers as it says.

schemathesis runs in-process against two apps without Kafka or Redis (built as in
test_api.py): one without any view of Kafka, where most operations answer 503 by design,
and one whose views are in memory and seeded (two models, a job, an anomaly, a maintenance
window; what the app publishes is folded back at once, history is read from memory), so
that the success paths answer too. The checks are the API fuzzer's, but
``not_a_server_error`` (those 503s are documented): status code, content type, response
schema and response headers conformance.
"""

from __future__ import annotations

import asyncio
import copy
import re
import socket
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import jsonschema_rs
import msgspec
import pytest
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka.errors import KafkaTimeoutError
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import api.anomaly
import api.baseline
from api.app import create_app
from api.keys import CONN, SETTINGS
from api.openapi import EXAMPLE_MACHINE, PATH, document
from schemas.energy import BaselineMetrics, BaselineModel, EnergyHourly
from schemas.events import (
    AnomalyDetected,
    MaintenanceWindow,
    ModelActivated,
    ModelTrained,
    TrainCommand,
    TrainingCompleted,
    TrainingStarted,
    decode_command,
    encode,
)
from schemas.machines import machine_by_id
from schemas.readings import Reading
from streams.settings import Settings
from streams.topics import COMMANDS, MODELS, TRAINING
from streams.views import AnomaliesView, JobsView, LogView, MaintenanceView, RegistryView
from tests.api.test_api import FakeProducer

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
#: Operations the seeded fuzz cannot bring to a 2xx, and why.
NO_SUCCESS = {
    ("GET", "/api/v1/ws/{connection_type}"): "101 needs an upgrade request (test_api.py)",
    ("DELETE", "/api/v1/machines/{machine_id}/maintenance"): "the PUT example just before "
    "it records a window in the past: nothing is open or planned",
}
M = EXAMPLE_MACHINE.id


def _closed_port() -> int:
    """A local port nothing listens on (so that no Kafka of another run is reached)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings() -> Settings:
    return Settings().replace(kafka_bootstrap=f"127.0.0.1:{_closed_port()}",
                              training_timeout_s=0.2)


async def _subscribe() -> AsyncIterator[tuple[str, bytes]]:
    await asyncio.Event().wait()
    yield ("", b"")  # never reached


# -- the two apps ----------------------------------------------------------------------------


class LoopbackProducer(FakeProducer):
    """`FakeProducer` with the ``send_and_wait`` that `api.training.publish` calls: it folds
    the event into the app's view of its topic at once, as the view would from Kafka, and a
    training command is run by a stand-in worker that trains a model at once."""

    def __init__(self, views: list[LogView]) -> None:
        super().__init__()
        self.views = views

    async def send_and_wait(self, topic: str, key: bytes, value: bytes) -> None:
        await (await self.send(topic, key, value))
        for view in self.views:
            if view.topic == topic:
                async with view._changed:
                    view._apply(key, value)
                    view._changed.notify_all()
        if topic == COMMANDS:
            for out_topic, event in self._train(decode_command(value)):
                await self.send_and_wait(out_topic, key, encode(event))

    def _train(self, cmd: TrainCommand) -> list[tuple[str, Any]]:
        registry = next((v for v in self.views if isinstance(v, RegistryView)), None)
        if registry is None:
            return []
        version = registry.registry.next_version(cmd.machine_id, cmd.model_type)
        model = msgspec.structs.replace(_model(version, accepted=True),
                                        machine_id=cmd.machine_id,
                                        model_id=f"{cmd.training_job_id}-model",
                                        training_job_id=cmd.training_job_id)
        job = {"occurred_at": NOW, "machine_id": cmd.machine_id, "model_type": cmd.model_type,
               "training_job_id": cmd.training_job_id, "job_id": cmd.training_job_id}
        return [(TRAINING, TrainingStarted(event_id=f"{cmd.training_job_id}-s", **job)),
                (MODELS, ModelTrained(event_id=f"{cmd.training_job_id}-m", occurred_at=NOW,
                                      machine_id=cmd.machine_id, model_type=cmd.model_type,
                                      version=version, model=model)),
                (TRAINING, TrainingCompleted(event_id=f"{cmd.training_job_id}-c",
                                             version=version, accepted=True, **job))]


class FakeRedis:
    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        pass


def bare_app() -> web.Application:
    """As test_api.py builds it: no view of Kafka, so most views answer 503."""
    return create_app(settings(), subscribe=_subscribe, producer=LoopbackProducer([]),  # type: ignore[arg-type]
                      start_bridge=False)


NOW = datetime.now(UTC).replace(microsecond=0)
#: What every other generated case names in its path (`_seeded_ids`).
SEEDED = {"model_id": "model-v3", "job_id": "job-1", "anomaly_id": "anomaly-1"}


def _model(version: int, accepted: bool) -> BaselineModel:
    metrics = BaselineMetrics(
        r_squared=0.9, adj_r_squared=0.9, rmse=1.0, mae=0.8, cv_rmse=9.0, nmbe=0.1,
        f_pvalue=0.001, coef_pvalues={"intercept": 0.2, "production": 0.001},
        training_samples=500, validation_samples=100, r_squared_validation=0.85,
        rmse_validation=1.1, mae_validation=0.9, cv_rmse_validation=10.0 + version,
        nmbe_validation=None, data_coverage=0.98)
    return BaselineModel(
        model_id=f"model-v{version}", machine_id=M, version=version, kind="production",
        feature_names=["production"], coefficients={"production": 0.2}, intercept=5.0,
        metrics=metrics, accepted=accepted, reasons=[] if accepted else ["CV(RMSE) too high"],
        training_start=NOW - timedelta(days=30), training_end=NOW - timedelta(days=1),
        trained_at=NOW - timedelta(days=version), training_job_id=f"job-{version}")


def seeded_app() -> web.Application:
    """The app with in-memory views of the topics, caught up: models v1 (accepted), v2 (not)
    and v3 (accepted, active) of the example machine, a finished job, an anomaly and a
    maintenance window; and Redis answers."""
    s = settings()
    registry, jobs = RegistryView(s), JobsView(s)
    anomalies, maintenance = AnomaliesView(s), MaintenanceView(s)
    t = NOW - timedelta(hours=2)
    for v in (1, 2, 3):
        registry.registry.apply(ModelTrained(event_id=f"t{v}", occurred_at=t, machine_id=M,
                                             model_type="baseline", version=v,
                                             model=_model(v, accepted=v != 2)))
    registry.registry.apply(ModelActivated(event_id="a3", occurred_at=t, machine_id=M,
                                           model_type="baseline", version=3,
                                           model_id="model-v3"))
    job: dict[str, Any] = {"occurred_at": t, "machine_id": M, "training_job_id": "job-1",
                           "job_id": "job-1", "model_type": "baseline"}
    jobs.jobs.apply(TrainingStarted(event_id="s1", **job))
    jobs.jobs.apply(TrainingCompleted(event_id="c1", version=1, accepted=True, **job))
    anomalies.anomalies.apply(AnomalyDetected(
        event_id="anomaly-1", occurred_at=t, machine_id=M, machine_name="Motor-Line-A",
        timestamp=t, metric="power_kw", value=80.0, expected_value=20.0,
        deviation_percent=300.0, score=0.99, threshold=0.9, anomaly_score=9.0,
        severity="critical", anomaly_type="spike", detector="hst"))
    maintenance.maintenance.apply(MaintenanceWindow(
        event_id="w1", occurred_at=t, machine_id=M, start=t, end=NOW + timedelta(days=1)))
    views: list[LogView] = [registry, jobs, anomalies, maintenance]
    for view in views:
        view.ready.set()
    app = create_app(s, subscribe=_subscribe, producer=LoopbackProducer(views),  # type: ignore[arg-type]
                     start_bridge=False)
    conn = app[CONN]
    conn.registry, conn.jobs, conn.anomalies = registry, jobs, anomalies
    conn.maintenance, conn.redis = maintenance, FakeRedis()  # type: ignore[assignment]
    return app


async def fake_readings(settings: Settings, machine_id: str, start: datetime,
                        end: datetime) -> list[Reading]:
    """`streams.history.load_readings` from memory: a reading every 5 minutes of the
    period, the power steady but for a spike in the hour two hours before its end."""
    m = machine_by_id(machine_id)
    assert m is not None
    out, t, spike = [], start, end - timedelta(hours=2)
    while t < end and len(out) < 20_000:
        power = m.rated_power_kw * (0.5 + 0.01 * (len(out) % 5))
        if spike <= t < spike + timedelta(hours=1):
            power *= 2.5
        out.append(Reading(machine_id=m.id, timestamp=t, power_kw=power,
                           energy_kwh=power * m.data_interval_seconds / 3600))
        t += timedelta(minutes=5)
    return out


async def fake_hourly(settings: Settings, machine_id: str, start: datetime | None = None,
                      end: datetime | None = None) -> list[EnergyHourly]:
    """`streams.history.load_hourly` from memory: every hour of the period."""
    assert start is not None and end is not None
    hours = min(int((end - start) / timedelta(hours=1)), 24 * 400)
    return [EnergyHourly(machine_id=machine_id, hour_start=start + timedelta(hours=i),
                         energy_kwh=10.0 + i % 3, readings=120, coverage=1.0,
                         mean_power_kw=10.0, max_power_kw=12.0, production_count=20.0)
            for i in range(hours)]


# -- the document and the router -------------------------------------------------------------


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, item in doc["paths"].items() for m in item if m in METHODS}


def router_routes(app: web.Application) -> set[tuple[str, str]]:
    """Method and path template of every route. HEAD is left out: aiohttp adds it to every
    GET route itself (the same answer without a body). The static route is left out: its
    paths are the dashboard's files (served by aiohttp's file handler), not operations."""
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD" or isinstance(route.resource, web.StaticResource):
            continue
        info = route.resource.get_info()  # type: ignore[union-attr]
        out.add((route.method, info.get("formatter") or info["path"]))
    return out


def test_every_route_is_described_and_every_operation_exists() -> None:
    app = bare_app()
    described, served = operations(document(app[SETTINGS])), router_routes(app)
    assert served - described == set(), "routes missing from the document"
    assert described - served == set(), "operations the app does not serve"


def test_path_parameters_match_the_templates_and_bodies_are_json() -> None:
    for path, item in document(settings())["paths"].items():
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (method, path)
            if method in {"post", "put", "patch"}:  # api.errors.body_guard
                assert {"413", "415"} <= set(op["responses"]), (method, path)
            if "requestBody" in op:
                assert list(op["requestBody"]["content"]) == ["application/json"], (method, path)


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every Schema Object of the document (components, parameters, media types, headers)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" and isinstance(value, dict):
                yield value
            elif key == "schemas" and isinstance(value, dict):
                yield from value.values()
            else:
                yield from _schemas(value)
    elif isinstance(node, list):
        for item in node:
            yield from _schemas(item)


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = copy.deepcopy(document(settings()))
    assert doc["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(doc).validate()  # the OpenAPI 3.1 meta-schema
    for schema in _schemas(doc):  # and every schema is valid JSON Schema 2020-12
        jsonschema_rs.meta.validate({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                     **schema})
    broken = copy.deepcopy(doc)
    broken["paths"]["/health"]["get"]["responses"]["200"]["content"] = []
    with pytest.raises(ValueError, match="not of type"):  # the validation does look
        schemathesis.openapi.from_dict(broken).validate()


def test_records_come_from_the_code() -> None:
    schemas = document(settings())["components"]["schemas"]
    assert list(schemas["Reading"]["properties"]) == list(Reading.__struct_fields__)
    assert list(schemas["BaselineModel"]["properties"]) == list(BaselineModel.__struct_fields__)
    assert machine_by_id(EXAMPLE_MACHINE.id) is not None
    assert {"anomaly_detected", "training_completed"} <= set(
        schemas["Event"]["discriminator"]["mapping"])


async def test_served_at_its_path(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    app = bare_app()
    resp = await (await aiohttp_client(app)).get(PATH)
    assert resp.status == 200 and resp.content_type == "application/json"
    assert await resp.json() == document(app[SETTINGS])


async def test_websocket_messages_are_as_described(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def subscribe() -> AsyncIterator[tuple[str, bytes]]:
        while True:
            yield await queue.get()

    app = create_app(settings(), subscribe=subscribe, producer=FakeProducer(),  # type: ignore[arg-type]
                     start_bridge=False)
    doc = document(app[SETTINGS])
    message = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/WebSocketMessage", "components": doc["components"]},
        validate_formats=True)
    ws = await (await aiohttp_client(app)).ws_connect("/api/v1/ws/events")
    got = [await ws.receive_json(timeout=5)]
    await ws.send_str("ping")
    got.append(await ws.receive_json(timeout=5))
    t = datetime(2026, 1, 5, tzinfo=UTC)
    await queue.put(("anomaly.detected", encode(AnomalyDetected(
        event_id="e1", occurred_at=t, machine_id=M, machine_name="Motor-Line-A", timestamp=t,
        metric="power_kw", value=1.0, expected_value=None, deviation_percent=None, score=1.0,
        threshold=0.9, anomaly_score=9.0, severity="critical", anomaly_type="spike",
        detector="hst"))))
    got.append(await ws.receive_json(timeout=5))
    await ws.close()
    assert [m["type"] for m in got] == ["connection", "pong", "anomaly_detected"]
    for m in got:
        message.validate(m)


# -- schemathesis against the app ------------------------------------------------------------


def fuzz(base_url: str, doc: dict[str, Any], examples: int,
         tweak: Callable[[Any, int], None] = lambda case, i: None,
         ) -> tuple[list[str], dict[tuple[str, str], Counter[int]]]:
    """Run every operation with its explicit examples, then ``examples`` generated positive
    and as many negative cases; return the failures of the checks (no shrinking: a failure
    is recorded and the run goes on) and the statuses seen per operation."""
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance,
              response_headers_conformance]
    schema = schemathesis.openapi.from_dict(copy.deepcopy(doc))
    failures: list[str] = []
    statuses: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)

    def check(label: tuple[str, str], case: Any, i: int) -> None:
        tweak(case, i)
        try:
            response = case.call(base_url=base_url, timeout=10)
        except Exception as e:  # noqa: BLE001 - the server did not answer at all
            failures.append(f"{label}: no answer: {e!r}")
            return
        statuses[label][response.status_code] += 1
        try:
            case.validate_response(response, checks=checks)
        except (FailureGroup, Exception) as e:  # noqa: BLE001 - record it, go on
            failures.append(f"{label}: {e}")

    def runner(label: tuple[str, str], strategy: Any, n: int) -> Callable[[], None]:
        counter = iter(range(10**6))

        @hypothesis.given(case=strategy)
        @hypothesis.settings(max_examples=n, database=None, deadline=None, derandomize=True,
                             phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                             suppress_health_check=list(hypothesis.HealthCheck))
        def run(case: Any) -> None:
            check(label, case, next(counter))
        return run  # type: ignore[no-any-return]

    for result in schema.get_all_operations():
        op = result.ok()
        label = (op.method.upper(), op.path)
        for strategy in schema.get_strategies_from_examples(op):
            runner(label, strategy, 1)()
        for mode in GenerationMode:
            try:
                runner(label, op.as_strategy(generation_mode=mode), examples)()
            except hypothesis.errors.Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, label  # nothing to make invalid
    return failures, statuses


def _seeded_ids(case: Any, i: int) -> None:
    """Every other case names a seeded model, job or anomaly: their success paths too."""
    for name, value in SEEDED.items():
        if i % 2 == 0 and case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = value


async def _fuzz_app(app: web.Application, doc: dict[str, Any], examples: int,
                    ) -> tuple[list[str], dict[tuple[str, str], Counter[int]]]:
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        return await asyncio.to_thread(fuzz, url, doc, examples, _seeded_ids)


@pytest.mark.parametrize("seeded", [False, True], ids=["no-views", "seeded-views"])
async def test_the_app_answers_as_the_document_says(seeded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if seeded:  # and history is read from memory, not Kafka
        monkeypatch.setattr(api.anomaly, "load_readings", fake_readings)
        monkeypatch.setattr(api.baseline, "load_hourly", fake_hourly)
    app = seeded_app() if seeded else bare_app()
    doc = document(app[SETTINGS])
    failures, statuses = await _fuzz_app(app, doc, 8)
    assert failures == [], f"{len(failures)} failures; the first:\n\n" + "\n\n".join(
        failures[:3])
    assert set(statuses) == operations(doc)
    if seeded:
        unreached = {op for op, seen in statuses.items()
                     if not any(200 <= s < 300 for s in seen)}
        assert unreached == set(NO_SUCCESS), {op: statuses[op] for op in unreached}


async def test_the_checks_do_find_a_wrong_document() -> None:
    app = bare_app()
    doc = copy.deepcopy(document(app[SETTINGS]))
    doc["paths"] = {"/api/v1/machines/{machine_id}": doc["paths"]["/api/v1/machines/{machine_id}"]}
    doc["paths"]["/api/v1/machines/{machine_id}"]["get"]["responses"].pop("404")
    doc["components"]["schemas"]["Machine"]["properties"]["name"] = {"type": "integer"}
    failures, _ = await _fuzz_app(app, doc, 3)
    text = "\n".join(failures)
    assert "Undocumented status code" in text and "Response violates schema" in text


# -- bugs the fuzzing found (fixed; kept as regression tests) -------------------------------


async def test_detect_without_kafka_is_503(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(bare_app())
    resp = await client.post("/api/v1/anomaly/detect", json={
        "machine_id": M, "start": "2026-01-05T00:00:00+00:00",
        "end": "2026-01-06T00:00:00+00:00"})
    assert resp.status == 503 and "Retry-After" in resp.headers


async def test_deviation_without_kafka_is_503(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(seeded_app())
    resp = await client.get("/api/v1/baseline/deviation", params={
        "machine_id": M, "start": "2026-01-05T00:00:00+00:00",
        "end": "2026-01-06T00:00:00+00:00"})
    assert resp.status == 503 and "Retry-After" in resp.headers


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", f"/api/v1/machines/{M}/maintenance", {"start": "2026-01-05T08:00:00+00:00",
                                                  "end": "2026-01-05T12:00:00+00:00"}),
    ("POST", f"/api/v1/model-performance/retrain/trigger?machine_id={M}", None),
])
async def test_an_unacknowledged_event_is_503(aiohttp_client, method, path, body) -> None:  # type: ignore[no-untyped-def]
    app = seeded_app()

    async def timed_out(*args: object, **kwargs: object) -> None:
        raise KafkaTimeoutError

    app[CONN].producer.send_and_wait = timed_out  # type: ignore[union-attr]
    resp = await (await aiohttp_client(app)).request(method, path, json=body)
    assert resp.status == 503 and "Retry-After" in resp.headers


async def test_times_with_an_offset_in_seconds_are_refused(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(seeded_app())
    resp = await client.put(f"/api/v1/machines/{M}/maintenance", json={
        "start": "2026-01-05T08:00:00+01:00:30", "end": "2026-01-05T12:00:00+00:00"})
    rfc3339 = jsonschema_rs.validator_for({"type": "string", "format": "date-time"},
                                          validate_formats=True)
    assert resp.status == 422 or rfc3339.is_valid((await resp.json())["window"]["start"])
