"""``dispatch-job``: create a room whose publishers the agent records.

As the original tool did: the room is created with an agent dispatch for
``AGENT_NAME``, so that every participant who publishes in it gets a recording job
(JT_PUBLISHER). ``--metadata`` is the jobs' metadata, e.g.
``{"record_audio": true, "record_video": false}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from ..config import Config
from .common import EXIT_CONFIG, load_config, setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--room", required=True, help="name of the room to create")
    parser.add_argument("--metadata", default="",
                        help='job metadata, JSON: {"record_audio": bool, "record_video": bool}')


def execute(options: argparse.Namespace) -> int:
    setup_logging("WARNING")
    config = load_config()
    if config is None:
        return EXIT_CONFIG
    if options.metadata:
        try:
            json.loads(options.metadata)
        except ValueError:
            print("publisher-hls-agent: --metadata must be JSON", file=sys.stderr)
            return EXIT_CONFIG
    return asyncio.run(_dispatch(config, options.room, options.metadata))


async def _dispatch(config: Config, room: str, metadata: str) -> int:
    from livekit import api

    http_url = config.livekit_url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    async with api.LiveKitAPI(http_url, config.api_key, config.api_secret) as client:
        try:
            created = await client.room.create_room(api.CreateRoomRequest(
                name=room, agents=[api.RoomAgentDispatch(agent_name=config.agent_name,
                                                         metadata=metadata)]))
        except Exception as exc:  # the SDK raises aiohttp and Twirp errors alike
            print(f"publisher-hls-agent: cannot create room {room!r} at "
                  f"{config.livekit_url}: {exc}", file=sys.stderr)
            return 1
    print(json.dumps({"room": created.name, "sid": created.sid,
                      "agent_name": config.agent_name, "metadata": metadata}))
    return 0
