"""Maintenance windows through the API, on the real broker: recorded, shown, ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest import Stack
from tests.integration.services import eventually, http_json

pytestmark = pytest.mark.integration

PUMP = "c0000000-0000-0000-0000-000000000004"


@pytest.fixture(scope="module")
def api(stack: Stack) -> str:
    return stack.start_api()


async def test_put_get_delete_a_window(api: str) -> None:
    url = f"{api}/api/v1/machines/{PUMP}/maintenance"
    now = datetime.now(UTC)
    async with aiohttp.ClientSession() as s:
        # Bad requests name the field; an unknown machine is a 404.
        async with s.put(url, json={"start": now.isoformat(),
                                    "end": (now - timedelta(hours=1)).isoformat()}) as r:
            assert r.status == 422 and (await r.json())["detail"][0]["loc"][-1] == "end"
        async with s.put(url, json={"reason": "no end"}) as r:
            assert r.status == 422 and (await r.json())["detail"][0]["loc"][-1] == "end"
        async with s.put(url.replace(PUMP, "nope"), json={"end": now.isoformat()}) as r:
            assert r.status == 404

        end = now + timedelta(hours=2)
        async with s.put(url, json={"end": end.isoformat(), "reason": "seal change"}) as r:
            assert r.status == 200
            put = await r.json()
        assert put["in_maintenance"] and put["window"]["reason"] == "seal change"

        # The API's own view of enms.maintenance shows it once the record is read back.
        def shown() -> dict[str, Any]:
            body = http_json(url)
            return dict(body) if body["window"] and body["window"]["id"] == put["window"]["id"] else {}
        got = await eventually(shown, 30, "the window on GET")
        assert got["in_maintenance"] and datetime.fromisoformat(got["window"]["end"]) == end

        async with s.delete(url) as r:
            assert r.status == 200
            ended = await r.json()
        assert not ended["in_maintenance"]
        assert datetime.fromisoformat(ended["window"]["end"]) < end
        await eventually(lambda: not http_json(url)["in_maintenance"], 30,
                         "the ended window on GET")
        async with s.delete(url) as r:
            assert r.status == 404  # nothing open any more

        # A planned window can be cancelled before it starts.
        later = now + timedelta(days=1)
        async with s.put(url, json={"start": later.isoformat(),
                                    "end": (later + timedelta(hours=1)).isoformat()}) as r:
            assert r.status == 200
            body = await r.json()
        assert not body["in_maintenance"]
        planned = body["window"]["id"]
        await eventually(lambda: http_json(url)["window"]["id"] == planned, 30,
                         "the planned window on GET")
        async with s.delete(url) as r:
            assert r.status == 200
            cancelled = (await r.json())["window"]
        assert cancelled["start"] == cancelled["end"]
