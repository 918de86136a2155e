"""The agent's HTTP server.

Open: ``/healthz`` (the process answers), ``/readyz`` (registered with the LiveKit
server and taking jobs), ``/metrics`` (Prometheus). Behind a LiveKit token
(``auth.py``): ``GET /v1/recordings`` and ``POST /v1/recordings/{room}/{participant}/
activate`` or ``/stop``. A request without a valid token gets 401 and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from ..metrics import Metrics
from .auth import Caller, Unauthorized, authenticate

logger = logging.getLogger(__name__)


class Control(Protocol):
    """What the server asks of the agent."""

    @property
    def ready(self) -> bool: ...
    def recordings(self) -> list[dict[str, Any]]: ...
    def control(self, room: str, participant: str, op: str) -> object | None: ...


def build_app(control: Control, metrics: Metrics, api_key: str, api_secret: str) -> web.Application:
    def caller_of(request: web.Request) -> Caller:
        try:
            return authenticate(request.headers.get("Authorization"), api_key, api_secret)
        except Unauthorized as exc:
            logger.warning("HTTP %s %s refused: %s", request.method, request.path, exc)
            raise web.HTTPUnauthorized(text=f"{exc}\n",
                                       headers={"WWW-Authenticate": "Bearer"}) from None

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        if control.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not registered with the LiveKit server\n")

    async def prometheus(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(),
                            headers={"Content-Type": "text/plain; version=0.0.4"})

    async def recordings(request: web.Request) -> web.Response:
        caller = caller_of(request)
        listed = [r for r in control.recordings() if caller.may_control(r["room"])]
        return web.json_response({"recordings": listed})

    def action(op: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            caller = caller_of(request)
            room, participant = request.match_info["room"], request.match_info["participant"]
            if not caller.may_control(room):
                raise web.HTTPForbidden(text="the token is limited to another room\n")
            if control.control(room, participant, op) is None:
                raise web.HTTPNotFound(text=f"no recording of {participant!r} in {room!r}\n")
            logger.info("%s requested over HTTP by %r", op, caller.identity,
                        extra={"room": room, "participant": participant})
            return web.json_response({"room": room, "participant": participant, "op": op},
                                     status=202)
        return handle

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/v1/recordings", recordings)
    app.router.add_post("/v1/recordings/{room}/{participant}/activate", action("activate"))
    app.router.add_post("/v1/recordings/{room}/{participant}/stop", action("stop"))
    return app


async def start_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    logger.info("HTTP server on http://%s:%d (healthz, readyz, metrics, /v1/recordings)",
                host, port)
    return runner
