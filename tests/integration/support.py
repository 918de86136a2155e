"""Helpers the integration tests share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from publisher_hls_agent.testbed.livekit_server import LiveKitServer
from publisher_hls_agent.testbed.publisher import SyntheticPublisher, make_token


def token(server: LiveKitServer, room: str, identity: str) -> str:
    return make_token(server.api_key, server.api_secret, room, identity)


@contextlib.asynccontextmanager
async def publishing(server: LiveKitServer, room: str, identity: str,
                     **options: Any) -> AsyncIterator[SyntheticPublisher]:
    """A synthetic publisher in ``room`` for the duration of the block."""
    publisher = SyntheticPublisher(server.url, token(server, room, identity), **options)
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()
