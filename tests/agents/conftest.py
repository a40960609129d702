"""The app fixture every agent test shares (Faust's test context, memory store), and the
agent's module state reset around each test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import faust
import pytest

from agents import score_readings
from detectors.registry import Maintenance, Registry
from streams.app import app as _app


@pytest.fixture
async def app() -> faust.App:
    _app.loop = asyncio.get_running_loop()
    _app.finalize()
    _app.conf.store = "memory://"  # type: ignore[assignment]  # Faust takes a URL or its text
    _app.flow_control.resume()
    return _app


def _reset() -> None:
    score_readings.scorers.data.clear()
    score_readings._last_checkpoint.clear()
    # The worker's views of enms.models and enms.maintenance: empty, as a fresh worker's.
    score_readings.registry_view.registry = Registry()
    score_readings.maintenance_view.maintenance = Maintenance()


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    """Each test starts with no machine's scorer in the table, no checkpoint times, no
    active baseline and no maintenance window: state left by another test (its scorers, its
    configuration, a window it opened) would decide instead."""
    _reset()
    yield
    _reset()
