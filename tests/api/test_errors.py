"""Every error body is built by `api.errors.error`, in the old contract's shape:
``{"detail": ...}``, a list naming the field (``loc``) for a validation error."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from api.errors import error, not_found, too_large, unavailable, unprocessable
from streams.settings import Settings
from tests.api.fakes import M1, Client, Fakes, reading

API = Path(__file__).resolve().parents[2] / "api"


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(Settings(), training_timeout_s=0.2)


def test_error_builds_a_json_detail_with_extra_fields() -> None:
    e = error(web.HTTPConflict, "already running", training_job_id="j1")
    assert (e.status, e.content_type) == (409, "application/json")
    assert orjson.loads(e.text or "") == {"detail": "already running", "training_job_id": "j1"}


def test_a_validation_error_names_the_field() -> None:
    e = unprocessable("[3].features.power_kw", "must be a number", "body")
    assert e.status == 422
    assert orjson.loads(e.text or "") == {"detail": [{
        "loc": ["body", 3, "features", "power_kw"], "field": "[3].features.power_kw",
        "msg": "must be a number", "type": "value_error"}]}
    whole = unprocessable("$", "expected a JSON object")
    assert orjson.loads(whole.text or "")["detail"][0]["loc"] == ["body"]
    query = unprocessable("limit", "must be a whole number", "query")
    assert orjson.loads(query.text or "")["detail"][0]["loc"] == ["query", "limit"]


def test_the_status_helpers() -> None:
    assert (not_found("x").status, orjson.loads(not_found("x").text or "")) == (
        404, {"detail": "x"})
    big = too_large("too big", 1024)
    assert (big.status, orjson.loads(big.text or "")) == (
        413, {"detail": "too big", "max_bytes": 1024})
    busy = unavailable("later", 7, accepted=0)
    assert (busy.status, busy.headers["Retry-After"]) == (503, "7")
    assert orjson.loads(busy.text or "") == {"detail": "later", "accepted": 0}


def _http_error_calls(path: Path) -> list[str]:
    """Places in a module that construct an aiohttp HTTP exception themselves."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name.startswith("HTTP"):
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_view_builds_an_error_body_of_its_own() -> None:
    modules = sorted(API.glob("*.py"))
    assert len(modules) > 10
    assert [place for m in modules for place in _http_error_calls(m)] == []


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("GET", "/api/v1/machines/nope", None, 404),
    ("GET", "/api/v1/machines?is_active=x", None, 422),
    ("POST", "/api/v1/readings", [reading(power_kw=-5)], 422),
    ("POST", "/api/v1/anomaly/detect", {"machine_id": M1, "start": "2026-01-05T00:00:00Z",
                                        "end": "2026-01-06T00:00:00Z"}, 400),
    ("GET", "/api/v1/baseline/model/nope", None, 404),
    ("POST", "/api/v1/baseline/train", {"machine_id": M1, "start_date": "2026-01-01T00:00:00Z",
                                        "end_date": "2026-01-05T00:00:00Z"}, 504),
    ("DELETE", f"/api/v1/machines/{M1}/maintenance", None, 404),
    ("GET", "/api/v1/ws/nope", None, 404),
])
async def test_every_error_answer_is_a_json_detail(
        client: Client, fakes: Fakes, method: str, path: str, body: object,
        status: int) -> None:
    fakes.trainer.outcome = "silent"  # so that the training is not done in time
    resp = await client.request(method, path, json=body)
    assert resp.status == status
    assert resp.content_type == "application/json"
    assert "detail" in await resp.json()
