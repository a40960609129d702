"""The app fixture every agent test shares (Faust's test context, memory store)."""

from __future__ import annotations

import asyncio

import pytest

from streams.app import app as _app


@pytest.fixture
async def app():  # type: ignore[no-untyped-def]
    _app.loop = asyncio.get_running_loop()
    _app.finalize()
    _app.conf.store = "memory://"
    _app.flow_control.resume()
    return _app
