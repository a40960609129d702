"""The OpenAPI document (`api.openapi`) is true: it describes every route of the app and
nothing else, it is valid OpenAPI 3.1, and the app answers as it says.

schemathesis runs in-process against two apps without Kafka or Redis (over the fakes of
tests/api/fakes.py): one without any view of Kafka, where most operations answer 503 by design,
and one whose views are in memory and seeded (two models, a job, an anomaly, a maintenance
window; what the app publishes is folded back at once, history is read from memory), so
that the success paths answer too. The checks are the API fuzzer's, but
``not_a_server_error`` (those 503s are documented): status code, content type, response
schema and response headers conformance.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
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
from pytest_aiohttp import AiohttpClient
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.keys import SETTINGS
from api.openapi import EXAMPLE_MACHINE, PATH, document
from schemas.energy import BaselineModel
from schemas.events import (
    MaintenanceWindow,
    ModelActivated,
    ModelTrained,
    TrainingCompleted,
    TrainingStarted,
    encode,
)
from schemas.machines import machine_by_id
from schemas.readings import Reading
from streams.settings import Settings
from tests.api.fakes import (
    Fakes,
    FakeSubscriber,
    SyntheticHistory,
    anomaly_event,
    baseline_model,
    no_kafka_deps,
)

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
#: Operations the seeded fuzz cannot bring to a 2xx, and why.
NO_SUCCESS = {
    ("GET", "/api/v1/ws/{connection_type}"): "101 needs an upgrade request (test_api.py)",
    ("DELETE", "/api/v1/machines/{machine_id}/maintenance"): "the PUT example just before "
    "it records a window in the past: nothing is open or planned",
}
M = EXAMPLE_MACHINE.id


def settings() -> Settings:
    return dataclasses.replace(Settings(), training_timeout_s=0.2)


# -- the two apps ----------------------------------------------------------------------------


def bare_app() -> web.Application:
    """An app without any view of Kafka, and whose history reads fail as with Kafka down: most
    views answer 503."""
    return create_app(settings(), no_kafka_deps())


NOW = datetime.now(UTC).replace(microsecond=0)
#: What every other generated case names in its path (`_seeded_ids`).
SEEDED = {"model_id": "model-v3", "job_id": "job-1", "anomaly_id": "anomaly-1"}


def seeded_fakes() -> Fakes:
    """In-memory views of the topics, caught up: models v1 (accepted), v2 (not) and v3
    (accepted, active) of the example machine, a finished job, an anomaly and a maintenance
    window; history made up for any period; and Redis answers. What the app publishes is
    folded back at once, and a training command trains a model at once."""
    fakes = Fakes(history=SyntheticHistory())
    t = NOW - timedelta(hours=2)
    fakes.registry.add(*(ModelTrained(event_id=f"t{v}", occurred_at=t, machine_id=M,
                                      model_type="baseline", version=v,
                                      model=baseline_model(M, v, accepted=v != 2))
                         for v in (1, 2, 3)),
                       ModelActivated(event_id="a3", occurred_at=t, machine_id=M,
                                      model_type="baseline", version=3, model_id="model-v3"))
    job: dict[str, Any] = {"occurred_at": t, "machine_id": M, "training_job_id": "job-1",
                           "job_id": "job-1", "model_type": "baseline"}
    fakes.jobs.add(TrainingStarted(event_id="s1", **job),
                   TrainingCompleted(event_id="c1", version=1, accepted=True, **job))
    fakes.anomalies.add(anomaly_event("anomaly-1", M, t))
    fakes.maintenance.add(MaintenanceWindow(event_id="w1", occurred_at=t, machine_id=M,
                                            start=t, end=NOW + timedelta(days=1)))
    return fakes


def seeded_app(fakes: Fakes | None = None) -> web.Application:
    return create_app(settings(), (fakes or seeded_fakes()).deps())


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
        assert route.resource is not None  # every route of a router has one
        info = route.resource.get_info()
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


async def test_served_at_its_path(aiohttp_client: AiohttpClient) -> None:
    app = bare_app()
    resp = await (await aiohttp_client(app)).get(PATH)
    assert resp.status == 200 and resp.content_type == "application/json"
    assert await resp.json() == document(app[SETTINGS])


async def test_websocket_messages_are_as_described(aiohttp_client: AiohttpClient) -> None:
    subscriber = FakeSubscriber()
    app = create_app(settings(), no_kafka_deps(subscriber))
    doc = document(app[SETTINGS])
    message = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/WebSocketMessage", "components": doc["components"]},
        validate_formats=True)
    ws = await (await aiohttp_client(app)).ws_connect("/api/v1/ws/events")
    got = [await ws.receive_json(timeout=5)]
    await ws.send_str("ping")
    got.append(await ws.receive_json(timeout=5))
    t = datetime(2026, 1, 5, tzinfo=UTC)
    await subscriber.put("anomaly.detected", encode(msgspec.structs.replace(
        anomaly_event("e1", M, t), expected_value=None, deviation_percent=None)))
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
        except (FailureGroup, Exception) as e:  # noqa: BLE001 - record any failure, go on
            failures.append(f"{label}: {e}")

    def runner(label: tuple[str, str], strategy: Any, n: int) -> Callable[[], None]:
        counter = iter(range(10**6))

        @hypothesis.given(case=strategy)
        @hypothesis.settings(max_examples=n, database=None, deadline=None, derandomize=True,
                             phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                             suppress_health_check=list(hypothesis.HealthCheck))
        def run(case: Any) -> None:
            check(label, case, next(counter))
        return run

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document's every operation is valid
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
async def test_the_app_answers_as_the_document_says(seeded: bool) -> None:
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


async def test_detect_without_kafka_is_503(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(bare_app())
    resp = await client.post("/api/v1/anomaly/detect", json={
        "machine_id": M, "start": "2026-01-05T00:00:00+00:00",
        "end": "2026-01-06T00:00:00+00:00"})
    assert resp.status == 503 and "Retry-After" in resp.headers


async def test_deviation_without_kafka_is_503(aiohttp_client: AiohttpClient) -> None:
    fakes = seeded_fakes()
    fakes.history.down = True
    client = await aiohttp_client(seeded_app(fakes))
    resp = await client.get("/api/v1/baseline/deviation", params={
        "machine_id": M, "start": "2026-01-05T00:00:00+00:00",
        "end": "2026-01-06T00:00:00+00:00"})
    assert resp.status == 503 and "Retry-After" in resp.headers


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", f"/api/v1/machines/{M}/maintenance", {"start": "2026-01-05T08:00:00+00:00",
                                                  "end": "2026-01-05T12:00:00+00:00"}),
    ("POST", f"/api/v1/model-performance/retrain/trigger?machine_id={M}", None),
])
async def test_an_unacknowledged_event_is_503(aiohttp_client: AiohttpClient, method: str,
                                              path: str, body: dict[str, str] | None) -> None:
    fakes = seeded_fakes()
    fakes.publisher.failure = KafkaTimeoutError()
    resp = await (await aiohttp_client(seeded_app(fakes))).request(method, path, json=body)
    assert resp.status == 503 and "Retry-After" in resp.headers
    assert fakes.publisher.sent == []


async def test_times_with_an_offset_in_seconds_are_refused(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(seeded_app())
    resp = await client.put(f"/api/v1/machines/{M}/maintenance", json={
        "start": "2026-01-05T08:00:00+01:00:30", "end": "2026-01-05T12:00:00+00:00"})
    rfc3339 = jsonschema_rs.validator_for({"type": "string", "format": "date-time"},
                                          validate_formats=True)
    assert resp.status == 422 or rfc3339.is_valid((await resp.json())["window"]["start"])
