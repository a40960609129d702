"""The app fixture every agent test shares (Faust's test context, memory store), and the
agent's module state reset around each test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from agents import score_readings
from streams.app import app as _app


@pytest.fixture
async def app():  # type: ignore[no-untyped-def]
    _app.loop = asyncio.get_running_loop()
    _app.finalize()
    _app.conf.store = "memory://"
    _app.flow_control.resume()
    return _app


@pytest.fixture(autouse=True)
def fresh_scorers() -> Iterator[None]:
    """Each test starts with no machine's scorer in the table and no checkpoint times: a
    scorer left by another test (with that test's configuration) would score instead."""
    score_readings.scorers.data.clear()
    score_readings._last_checkpoint.clear()
    yield
    score_readings.scorers.data.clear()
    score_readings._last_checkpoint.clear()
