"""Recordings served over loopback HTTP with the pages and scripts the browser tests use:
``web/player.html`` with hls.js, ``web/publisher.html`` with livekit-client (both from npm,
pinned in ``web/package-lock.json``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from . import ROOT
from .livekit_server import free_port

WEB = ROOT / "web"
HLS_JS = WEB / "node_modules" / "hls.js" / "dist"
LIVEKIT_CLIENT = WEB / "node_modules" / "livekit-client" / "dist"
PAGES = ("player.html", "publisher.html")


@contextlib.asynccontextmanager
async def serving(recordings: Path) -> AsyncIterator[str]:
    """``recordings`` (a folder of recording folders) at ``{url}/rec/``, the pages at
    ``{url}/player.html`` and ``{url}/publisher.html``; yields ``url``."""
    for script in (HLS_JS / "hls.min.js", LIVEKIT_CLIENT / "livekit-client.umd.js"):
        if not script.exists():
            raise RuntimeError(f"{script} is missing: scripts/setup installs it with npm")
    app = web.Application()
    app.router.add_static("/hls/", HLS_JS)
    app.router.add_static("/livekit/", LIVEKIT_CLIENT)
    app.router.add_static("/rec/", recordings)
    for page in PAGES:
        app.router.add_get(f"/{page}", _file_handler(WEB / page))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _file_handler(path: Path) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)
    return handler
