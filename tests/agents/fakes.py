"""Hand-written stand-ins for the agents' outbound sends."""

from __future__ import annotations

import asyncio
from unittest.mock import AsyncMock


def acked() -> AsyncMock:
    """A mocked ``topic.send`` for sends that await the broker's ack (the dead letters):
    each call returns an already acknowledged future."""
    async def send(**_kw: object) -> asyncio.Future[None]:
        f: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        f.set_result(None)
        return f
    return AsyncMock(side_effect=send)
