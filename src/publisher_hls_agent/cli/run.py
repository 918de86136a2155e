"""``run``: start the agent.

Today it validates the configuration and checks that the LiveKit server accepts the
API credentials; taking jobs as a LiveKit agent worker is the agent issue's work.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from ..config import Config
from .common import EXIT_CONFIG, load_config, setup_logging

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check-only", action="store_true",
                        help="validate the configuration and the server credentials, then exit")


def execute(options: argparse.Namespace) -> int:
    setup_logging()
    config = load_config()
    if config is None:
        return EXIT_CONFIG
    logger.info("configuration: %r", config)
    return asyncio.run(_check_server(config))


async def _check_server(config: Config) -> int:
    from livekit import api

    http_url = config.livekit_url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    async with api.LiveKitAPI(http_url, config.api_key, config.api_secret) as client:
        try:
            rooms = await client.room.list_rooms(api.ListRoomsRequest())
        except Exception as exc:  # the SDK raises aiohttp and Twirp errors alike
            logger.error("LiveKit server at %s refused or unreachable: %s",
                         config.livekit_url, type(exc).__name__)
            return 1
    logger.info("LiveKit server at %s accepts the credentials (%d rooms)",
                config.livekit_url, len(rooms.rooms))
    logger.error("the agent worker (taking JT_PUBLISHER jobs) is not implemented yet")
    return 1
