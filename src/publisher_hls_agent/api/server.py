"""The agent's HTTP server.

Open: ``/healthz`` (the process answers), ``/readyz`` (registered with the LiveKit
server and taking jobs), ``/metrics`` (Prometheus), ``/preview`` (a page that lists the
recordings on disk and plays them with hls.js) and ``/preview/room/{room}`` (every
participant's recording of a room, played together on one wall clock); the pages hold
no data of their own. Behind a
LiveKit token (``auth.py``): ``GET /v1/recordings`` (the jobs), ``POST
/v1/recordings/{room}/{participant}/activate`` or ``/stop``, and what the preview page
reads: ``GET /v1/library`` (``library.py``) and ``GET /v1/files/{folder}/{name}``. A
request without a valid token gets 401 and changes nothing; a token limited to one
room sees and controls only that room.
"""

from __future__ import annotations

import asyncio
import html
import importlib.resources
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from ..config import HLS_JS_CDN, HLS_JS_CDN_INTEGRITY
from ..errors import Unauthorized
from ..metrics import Metrics
from ..storage.keys import content_type
from . import library
from .auth import Caller, authenticate

logger = logging.getLogger(__name__)


class Control(Protocol):
    """What the server asks of the agent."""

    @property
    def ready(self) -> bool: ...
    def recordings(self) -> list[dict[str, Any]]: ...
    def control(self, room: str, participant: str, op: str) -> object | None: ...


def page_with_player(name: str, player_url: str) -> str:
    """A page of this package, loading hls.js from ``player_url`` (checked against its
    known hash when it is the pinned CDN copy), with the token handling every page
    shares (``token.js``) put in."""
    page = importlib.resources.files(__package__).joinpath(name).read_text("utf-8")
    # Subresource integrity needs a CORS fetch, which the CDN allows; another server may not.
    integrity = (f'integrity="{HLS_JS_CDN_INTEGRITY}" crossorigin="anonymous"'
                 if player_url == HLS_JS_CDN else "")
    token = importlib.resources.files(__package__).joinpath("token.js").read_text("utf-8")
    return (page.replace("{{PLAYER_URL}}", html.escape(player_url, quote=True))
            .replace("{{PLAYER_INTEGRITY}}", integrity).replace("{{TOKEN_SCRIPT}}", token))


def build_app(control: Control, metrics: Metrics, api_key: str, api_secret: str, *,
              output_dir: Path, player_url: str = HLS_JS_CDN) -> web.Application:
    routes = Routes(control, metrics, api_key, api_secret, output_dir,
                    {name: page_with_player(name, player_url)
                     for name in ("preview.html", "replay.html")})
    app = web.Application()
    app.router.add_get("/healthz", routes.healthz)
    app.router.add_get("/readyz", routes.readyz)
    app.router.add_get("/metrics", routes.prometheus)
    app.router.add_get("/v1/recordings", routes.recordings)
    app.router.add_post("/v1/recordings/{room}/{participant}/activate",
                        routes.action("activate"))
    app.router.add_post("/v1/recordings/{room}/{participant}/stop", routes.action("stop"))
    app.router.add_get("/preview", routes.page("preview.html"))
    app.router.add_get("/preview/room/{room}", routes.page("replay.html"))
    app.router.add_get("/v1/library", routes.library_list)
    app.router.add_get("/v1/files/{folder}/{name}", routes.library_file)
    app.router.add_get("/v1/files/{folder}/thumbnails/{name}", routes.thumbnail_file)
    return app


class Routes:
    """The handlers, with what they answer from."""

    def __init__(self, control: Control, metrics: Metrics, api_key: str, api_secret: str,
                 output_dir: Path, pages: dict[str, str]) -> None:
        self.control, self.metrics, self.output_dir = control, metrics, output_dir
        self.pages = pages
        self._api_key, self._api_secret = api_key, api_secret

    def caller_of(self, request: web.Request) -> Caller:
        try:
            return authenticate(request.headers.get("Authorization"), self._api_key,
                                self._api_secret)
        except Unauthorized as exc:
            logger.warning("HTTP %s %s refused: %s", request.method, request.path, exc)
            raise web.HTTPUnauthorized(text=f"{exc}\n",
                                       headers={"WWW-Authenticate": "Bearer"}) from None

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        if self.control.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not registered with the LiveKit server\n")

    async def prometheus(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(),
                            headers={"Content-Type": "text/plain; version=0.0.4"})

    async def recordings(self, request: web.Request) -> web.Response:
        caller = self.caller_of(request)
        listed = [r for r in self.control.recordings() if caller.may_control(r["room"])]
        return web.json_response({"recordings": listed})

    def page(self, name: str) -> Callable[[web.Request], Any]:
        """A page: the same for every caller (what it shows, it reads with the token)."""
        async def serve(request: web.Request) -> web.Response:
            return web.Response(text=self.pages[name], content_type="text/html",
                                headers={"Cache-Control": "no-cache"})
        return serve

    async def library_list(self, request: web.Request) -> web.Response:
        caller = self.caller_of(request)
        found = await asyncio.to_thread(library.list_recordings, self.output_dir,
                                        self.control.recordings())
        listed = [r for r in found if caller.may_see(r["room"])]
        return web.json_response({"recordings": listed})

    async def library_file(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, library.playable_file)

    async def thumbnail_file(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, library.thumbnail_file)

    async def _serve(self, request: web.Request,
                     find: Callable[[Path, str, str], Path | None]) -> web.StreamResponse:
        caller = self.caller_of(request)
        folder, name = request.match_info["folder"], request.match_info["name"]
        path = find(self.output_dir, folder, name)
        room = await asyncio.to_thread(library.room_of, self.output_dir, folder,
                                       self.control.recordings()) if path is not None else None
        # Another room's file answers as a missing one does: a room token learns
        # nothing of what other rooms have on disk.
        if path is None or not caller.may_see(room):
            raise web.HTTPNotFound(text="no such recording file\n")
        return web.FileResponse(path, headers={"Content-Type": content_type(name),
                                                "Cache-Control": "no-cache"})

    def action(self, op: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            caller = self.caller_of(request)
            room, participant = request.match_info["room"], request.match_info["participant"]
            if not caller.may_control(room):
                raise web.HTTPForbidden(text="the token is limited to another room\n")
            if self.control.control(room, participant, op) is None:
                raise web.HTTPNotFound(text=f"no recording of {participant!r} in {room!r}\n")
            logger.info("%s requested over HTTP by %r", op, caller.identity,
                        extra={"room": room, "participant": participant})
            return web.json_response({"room": room, "participant": participant, "op": op},
                                     status=202)
        return handle


async def start_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    logger.info("HTTP server on http://%s:%d (healthz, readyz, metrics, preview, /v1)",
                host, port)
    return runner
