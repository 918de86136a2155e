"""The worker's websocket to the LiveKit server: register, listen, report, reconnect.

``run()`` keeps one registered connection alive for as long as the worker runs: when
the server goes away it reconnects with capped backoff and registers again (a new
worker id). Server messages are handed to a ``ServerHandler``; it answers
availability requests at once, since the server gives up on a worker after 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

import aiohttp
from livekit import api
from livekit.protocol import agent

from .. import websocket
from ..errors import CredentialsRejected, RegistrationError
from . import protocol

logger = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)  # the last one repeats
REGISTER_TIMEOUT = 10.0


class ServerHandler(Protocol):
    def registered(self, worker_id: str) -> None: ...
    def disconnected(self) -> None: ...
    def availability(self, request: agent.AvailabilityRequest) -> agent.WorkerMessage: ...
    def assignment(self, assignment: agent.JobAssignment) -> None: ...
    def termination(self, job_id: str) -> None: ...
    def status(self) -> agent.WorkerMessage:
        """The worker's load now: sent after every registration."""
        ...


class WorkerConnection:
    def __init__(self, livekit_url: str, api_key: str, api_secret: str, agent_name: str,
                 handler: ServerHandler) -> None:
        self._url = protocol.agent_url(livekit_url)
        self._api_key, self._api_secret = api_key, api_secret
        self._agent_name = agent_name
        self._handler = handler
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._closing = False
        self._failures = 0  # in a row, since the last registration
        self.registrations = 0

    @property
    def registered(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def run(self) -> None:
        """Stay registered until ``close()``."""
        async with aiohttp.ClientSession() as session:
            while not self._closing:
                try:
                    await self._connect_and_serve(session)
                except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError,
                        RegistrationError) as exc:
                    if self._closing:
                        break
                    delay = RECONNECT_DELAYS[min(self._failures, len(RECONNECT_DELAYS) - 1)]
                    self._failures += 1
                    logger.warning("agent connection to %s failed (%s); retrying in %.1f s",
                                   self._url, _describe(exc), delay)
                    await asyncio.sleep(delay)
                    continue
                if not self._closing:
                    logger.warning("the LiveKit server closed the agent connection; "
                                   "registering again")
                    await asyncio.sleep(RECONNECT_DELAYS[0])

    async def send(self, message: agent.WorkerMessage) -> None:
        """Send if registered; a message for a lost connection is moot (the server
        forgets a worker's jobs and load with its connection)."""
        ws = self._ws
        if ws is None or ws.closed:
            return
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await ws.send_bytes(message.SerializeToString())

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()

    async def _connect_and_serve(self, session: aiohttp.ClientSession) -> None:
        token = (api.AccessToken(self._api_key, self._api_secret)
                 .with_grants(api.VideoGrants(agent=True)).to_jwt())
        try:
            ws = await session.ws_connect(self._url, headers={"Authorization": f"Bearer {token}"},
                                          heartbeat=None, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise CredentialsRejected(
                    "the LiveKit server rejects LIVEKIT_API_KEY/LIVEKIT_API_SECRET") from None
            raise RegistrationError(f"HTTP {exc.status} {exc.message}") from exc
        try:
            await ws.send_bytes(protocol.register_request(self._agent_name).SerializeToString())
            first = await asyncio.wait_for(_receive(ws), REGISTER_TIMEOUT)
            if first is None or first.WhichOneof("message") != "register":
                raise RegistrationError("the server did not answer the registration")
            self._ws = ws
            self.registrations += 1
            self._failures = 0
            logger.info("registered with %s as worker %s (agent %r)", self._url,
                        first.register.worker_id, self._agent_name)
            self._handler.registered(first.register.worker_id)
            await self.send(self._handler.status())
            pinger = asyncio.create_task(self._ping(ws))
            try:
                while (message := await _receive(ws)) is not None:
                    await self._dispatch(message)
            finally:
                pinger.cancel()
        finally:
            self._ws = None
            await ws.close()
            if self.registrations:
                self._handler.disconnected()

    async def _dispatch(self, message: agent.ServerMessage) -> None:
        kind = message.WhichOneof("message")
        if kind == "availability":
            await self.send(self._handler.availability(message.availability))
        elif kind == "assignment":
            self._handler.assignment(message.assignment)
        elif kind == "termination":
            self._handler.termination(message.termination.job_id)
        elif kind == "go_away":
            logger.info("the LiveKit server asks this worker to go away; reconnecting")
            raise ConnectionError("go away")
        # pong: nothing to do; the socket being alive is what matters

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(protocol.PING_INTERVAL)
            await self.send(protocol.ping(int(time.time() * 1000)))


async def _receive(ws: aiohttp.ClientWebSocketResponse) -> agent.ServerMessage | None:
    return await websocket.receive(ws, agent.ServerMessage)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
