"""POST /api/v1/readings against hostile input, and the request guards of every view
(no Kafka or Redis: the fakes of tests/api/fakes.py)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from streams.settings import Settings
from tests.api.fakes import M1, Client, Fakes, reading


async def _client(aiohttp_client: AiohttpClient, fakes: Fakes, **settings: Any) -> Client:
    app = create_app(dataclasses.replace(Settings(), **settings), fakes.deps())
    return await aiohttp_client(app)


def loc_of(body: dict[str, Any]) -> list[Any]:
    loc: list[Any] = body["detail"][0]["loc"]
    return loc


#: The bad readings of the issue, one at a time after a good one: (reading, loc of the 422).
BAD = [
    (None, ["body", 1]),
    (reading(timestamp="9000-01-01T00:00:00Z"), ["body", 1, "timestamp"]),
    (reading(timestamp="1999-12-31T23:59:59Z"), ["body", 1, "timestamp"]),
    (reading(power_kw=1e308), ["body", 1, "power_kw"]),
    (reading(energy_kwh=1e308), ["body", 1, "energy_kwh"]),
    (reading(throughput_units_per_hour=1e200), ["body", 1, "throughput_units_per_hour"]),
    (reading(outdoor_temp_c=90.0), ["body", 1, "outdoor_temp_c"]),
    (reading(production_count=-1), ["body", 1, "production_count"]),
    ([reading()], ["body", 1]),
    ("2 MB " * 400_000, ["body", 1]),
]


@pytest.mark.parametrize(("bad", "loc"), BAD)
async def test_each_bad_reading_gets_422_naming_the_field(
        client: Client, fakes: Fakes, bad: object, loc: list[object]) -> None:
    resp = await client.post("/api/v1/readings", json=[reading(), bad])
    assert resp.status == 422, await resp.text()
    body = await resp.json()
    assert loc_of(body) == loc
    assert body["detail"][0]["msg"]
    assert fakes.publisher.sent == []


async def test_a_deep_body_gets_422_naming_the_place_before_any_parser(client: Client, fakes: Fakes) -> None:
    deep = b"[" * 5000 + b"]" * 5000
    body = b'[{"machine_id": "%s", "x": %s}]' % (M1.encode(), deep)
    resp = await client.post("/api/v1/readings", data=body,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 422
    detail = (await resp.json())["detail"][0]
    assert detail["loc"] == ["body", 0, "x", 0, 0]
    assert "nested deeper than 32" in detail["msg"]


async def test_bytes_that_are_not_utf8_get_422(client: Client, fakes: Fakes) -> None:
    resp = await client.post("/api/v1/readings", data=b"\xff\xfe" + os.urandom(100),
                             headers={"Content-Type": "application/json"})
    assert resp.status == 422
    assert loc_of(await resp.json()) == ["body"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", ""])
async def test_a_body_that_is_not_declared_json_gets_415(
        client: Client, fakes: Fakes, content_type: str) -> None:
    resp = await client.post("/api/v1/readings", data=orjson.dumps([reading()]),
                             headers={"Content-Type": content_type} if content_type else {})
    assert resp.status == 415
    assert "application/json" in (await resp.json())["detail"]
    assert fakes.publisher.sent == []


async def test_the_other_json_views_want_json_too(client: Client) -> None:
    resp = await client.post("/api/v1/anomaly/detect", data=b'{"machine_id": "x"}',
                             headers={"Content-Type": "text/plain"})
    assert resp.status == 415


async def test_an_announced_body_over_the_limit_gets_413_unread(
        aiohttp_client: AiohttpClient, fakes: Fakes) -> None:
    client = await _client(aiohttp_client, fakes, max_body_bytes=1024)
    body = orjson.dumps([reading()] * 40)  # about 4 KB
    resp = await client.post("/api/v1/readings", data=body,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert (await resp.json())["max_bytes"] == 1024
    assert fakes.publisher.sent == []


async def test_a_chunked_body_over_the_limit_gets_413_while_read(
        aiohttp_client: AiohttpClient, fakes: Fakes) -> None:
    client = await _client(aiohttp_client, fakes, max_body_bytes=1024)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 100  # no Content-Length: the limit holds while reading
    resp = await client.post("/api/v1/readings", data=chunks(),
                             headers={"Content-Type": "application/json"})
    assert resp.status == 413


async def test_expect_100_continue_is_refused_before_the_body(
        aiohttp_client: AiohttpClient, fakes: Fakes) -> None:
    client = await _client(aiohttp_client, fakes, max_body_bytes=1024)
    resp = await client.post("/api/v1/readings", data=b"[]" + b" " * 4096, expect100=True,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 413
    ok = await client.post("/api/v1/readings", json=[reading()], expect100=True)
    assert ok.status == 202


async def test_kafka_unreachable_gets_503_with_retry_after_and_nothing_sent(
        client: Client, fakes: Fakes) -> None:
    fakes.publisher.leaders_up = False
    resp = await client.post("/api/v1/readings", json=[reading(), reading(power_kw=41.0)])
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "5"
    body = await resp.json()
    assert (body["accepted"], body["accepted_indexes"], body["not_confirmed"]) == (0, [], 2)
    assert fakes.publisher.sent == []  # nothing was sent: nothing half-written


async def test_acks_that_stop_coming_get_503_naming_what_was_accepted(
        aiohttp_client: AiohttpClient, fakes: Fakes) -> None:
    client = await _client(aiohttp_client, fakes, ingest_timeout_s=0.3)
    fakes.publisher.acks = 2  # the broker acknowledges two sends, then goes quiet
    resp = await client.post("/api/v1/readings", json=[
        reading(timestamp=f"2026-01-05T08:00:0{i}+00:00") for i in range(5)])
    assert resp.status == 503
    body = await resp.json()
    assert body["accepted_indexes"] == [0, 1]
    assert (body["accepted"], body["not_confirmed"]) == (2, 3)
    assert "Re-send" in body["detail"]


@pytest.mark.parametrize(("path", "loc"), [
    ("/api/v1/anomaly/recent?start_time=0001-01-01T00:00:00", ["query", "start_time"]),
    ("/api/v1/anomaly/recent?end_time=9999-12-31T23:59:59%2B14:00", ["query", "end_time"]),
    ("/api/v1/anomaly/search?start_time=2020-01-01T00:00:00Z&end_time=2024-01-01T00:00:00Z",
     ["query", "end_time"]),
    ("/api/v1/anomaly/recent?start_time=not-a-time", ["query", "start_time"]),
    (f"/api/v1/baseline/deviation?machine_id={M1}&start=2024-01-01T00:00:00Z"
     "&end=2026-01-01T00:00:00Z", ["query", "end"]),
    (f"/api/v1/model-performance/retrain/trigger?machine_id={M1}&reason={'x' * 1001}",
     ["query", "reason"]),
])
async def test_dates_windows_and_texts_are_range_checked(
        client: Client, path: str, loc: list[object]) -> None:
    method = "POST" if "trigger" in path else "GET"
    resp = await client.request(method, path)
    assert resp.status == 422, await resp.text()
    assert loc_of(await resp.json()) == loc


@pytest.mark.parametrize(("body", "loc"), [
    ({"machine_id": M1, "start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
     ["body", "end"]),
    ({"machine_id": M1, "start": "0001-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
     ["body", "start"]),
    ({"machine_id": M1, "start": 5, "end": "2026-03-01T00:00:00Z"}, ["body", "start"]),
    ({"machine_id": [M1], "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
     ["body", "machine_id"]),
    ({"machine_id": M1, "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z",
      "contamination": True}, ["body", "contamination"]),
])
async def test_detect_checks_its_window(
        client: Client, body: dict[str, object], loc: list[object]) -> None:
    resp = await client.post("/api/v1/anomaly/detect", json=body)
    assert resp.status == 422, await resp.text()
    assert loc_of(await resp.json()) == loc


async def test_a_maintenance_reason_has_a_maximum_length(client: Client) -> None:
    resp = await client.put(f"/api/v1/machines/{M1}/maintenance",
                            json={"end": "2026-01-02T00:00:00Z", "start": "2026-01-01T00:00:00Z",
                                  "reason": "x" * 1001})
    assert resp.status == 422
    assert loc_of(await resp.json()) == ["body", "reason"]


async def test_a_client_gone_mid_upload_does_not_break_the_server(client: Client, fakes: Fakes) -> None:
    with pytest.raises((aiohttp.ClientError, TimeoutError)):
        await client.post("/api/v1/readings", data=b"[" + b" " * 100,
                          headers={"Content-Type": "application/json", "Content-Length": "9999"},
                          timeout=aiohttp.ClientTimeout(total=0.5))
    assert (await client.post("/api/v1/readings", json=[reading()])).status == 202


async def test_health_counts_answers_by_status(client: Client) -> None:
    await client.post("/api/v1/readings", json=[reading()])
    await client.post("/api/v1/readings", data=b"x", headers={"Content-Type": "text/plain"})
    await client.get("/api/v1/machines/nope")
    counts = (await (await client.get("/health")).json())["requests"]
    assert counts["by_status"] == {"202": 1, "404": 1, "415": 1}
    assert (counts["total"], counts["2xx"], counts["4xx"]) == (3, 1, 2)


def test_malformed_http_is_logged_as_one_warning_line() -> None:
    import io
    import logging

    from aiohttp.http_exceptions import LineTooLong

    from api.app import _BadHttpOneLine

    buf = io.StringIO()
    logger = logging.getLogger("test.aiohttp.server")
    handler = logging.StreamHandler(buf)
    logger.addHandler(handler)
    logger.addFilter(_BadHttpOneLine())
    try:
        try:
            raise LineTooLong("x" * 9000, 8190)
        except LineTooLong as e:
            logger.error("Error handling request from %s", "127.0.0.1", exc_info=e)
        try:
            raise ZeroDivisionError
        except ZeroDivisionError as e:  # a real error keeps its traceback
            logger.error("Error handling request from %s", "127.0.0.1", exc_info=e)
    finally:
        logger.removeHandler(handler)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("bad HTTP request answered 400: Got more than 8190 bytes")
    assert lines[1] == "Error handling request from 127.0.0.1"
    assert "Traceback" in lines[2]
