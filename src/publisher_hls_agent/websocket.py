"""Protobuf messages over a websocket, as LiveKit's signalling and agent sockets carry
them: one binary frame a message."""

from __future__ import annotations

from typing import TypeVar

import aiohttp
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

_ENDED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
          aiohttp.WSMsgType.ERROR)


async def receive(ws: aiohttp.ClientWebSocketResponse, message_type: type[M]) -> M | None:
    """The next message, or None once the socket has closed."""
    while True:
        frame = await ws.receive()
        if frame.type == aiohttp.WSMsgType.BINARY:
            message = message_type()
            message.ParseFromString(frame.data)
            return message
        if frame.type in _ENDED:
            return None
        # text frames and pings carry nothing for these protocols
