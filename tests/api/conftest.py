"""The API app over in-memory ports (`tests.api.fakes`): no Kafka, no Redis."""

from __future__ import annotations

import pytest
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from streams.settings import Settings
from tests.api.fakes import Client, Fakes


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, fakes: Fakes, settings: Settings) -> Client:
    return await aiohttp_client(create_app(settings, fakes.deps()))
