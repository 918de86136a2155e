"""The LiveKit signalling websocket: binary ``SignalRequest``/``SignalResponse``.

One ``SignalConnection`` is one websocket session: connect, read the ``JoinResponse``,
then exchange messages while a ping task keeps the session alive. Reconnecting is the
room client's decision, not this module's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator

import aiohttp
from livekit.protocol import models, rtc

from .. import __version__, websocket
from ..errors import SignalError

logger = logging.getLogger(__name__)

# 16, not the server's current 17: 17 adds packet trailers to media payloads, which a
# passthrough recorder must not have to strip.
PROTOCOL_VERSION = 16
JOIN_TIMEOUT = 15.0


def rtc_url(server_url: str, token: str, *, auto_subscribe: bool = False) -> str:
    """The ``/rtc`` websocket URL for a LiveKit server URL given as ws(s) or http(s)."""
    parts = urllib.parse.urlsplit(server_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = urllib.parse.urlencode(
        {
            "access_token": token,
            "protocol": PROTOCOL_VERSION,
            "auto_subscribe": int(auto_subscribe),
            "sdk": "python",
            "version": __version__,
        }
    )
    path = parts.path.rstrip("/") + "/rtc"
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, query, ""))


def redact(url: str) -> str:
    """The URL without its access token, for logs."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, "***" if k == "access_token" else v)
             for k, v in urllib.parse.parse_qsl(parts.query)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


class SignalConnection:
    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse,
                 join: rtc.JoinResponse) -> None:
        self._session = session
        self._ws = ws
        self.join = join
        self._ping_task: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def connect(cls, server_url: str, token: str) -> SignalConnection:
        url = rtc_url(server_url, token)
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, heartbeat=None, max_msg_size=0)
            join = await asyncio.wait_for(cls._read_join(ws), JOIN_TIMEOUT)
        except aiohttp.WSServerHandshakeError as exc:
            await session.close()
            raise SignalError(f"server refused the connection to {redact(url)}: "
                              f"HTTP {exc.status} {exc.message}") from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await session.close()
            raise SignalError(f"cannot connect to {redact(url)}: {exc!r}") from exc
        except BaseException:
            await session.close()
            raise
        connection = cls(session, ws, join)
        connection._ping_task = asyncio.create_task(connection._ping_loop())
        return connection

    @staticmethod
    async def _read_join(ws: aiohttp.ClientWebSocketResponse) -> rtc.JoinResponse:
        while True:
            response = await _receive(ws)
            if response is None:
                raise SignalError("signalling closed before the join response")
            kind = response.WhichOneof("message")
            if kind == "join":
                return response.join
            if kind == "leave":
                raise SignalError(f"server refused the join: {response.leave.reason}")
            logger.debug("ignoring %s before join", kind)

    async def send(self, request: rtc.SignalRequest) -> None:
        if self._closed or self._ws.closed:
            raise SignalError("signalling connection is closed")
        await self._ws.send_bytes(request.SerializeToString())

    async def responses(self) -> AsyncIterator[rtc.SignalResponse]:
        """Every message from the server until the socket closes (pongs excepted)."""
        while True:
            response = await _receive(self._ws)
            if response is None:
                return
            if response.WhichOneof("message") in ("pong", "pong_resp"):
                continue
            yield response

    async def _ping_loop(self) -> None:
        interval = self.join.ping_interval or 5
        while True:
            await asyncio.sleep(interval)
            request = rtc.SignalRequest(ping_req=rtc.Ping(timestamp=int(time.time() * 1000)))
            try:
                await self.send(request)
            except (SignalError, ConnectionError):
                return

    async def close(self, *, leave: bool = True) -> None:
        if self._closed:
            return
        if leave and not self._ws.closed:
            with contextlib.suppress(Exception):
                await self.send(rtc.SignalRequest(leave=rtc.LeaveRequest(
                    reason=models.DisconnectReason.CLIENT_INITIATED,
                    action=rtc.LeaveRequest.Action.DISCONNECT,
                )))
        self._closed = True
        if self._ping_task is not None:
            self._ping_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ping_task
        await self._ws.close()
        await self._session.close()


async def _receive(ws: aiohttp.ClientWebSocketResponse) -> rtc.SignalResponse | None:
    return await websocket.receive(ws, rtc.SignalResponse)
