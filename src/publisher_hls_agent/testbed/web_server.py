"""Recordings served over loopback HTTP with the page and hls.js the browser tests use
(``web/player.html``, ``web/node_modules/hls.js`` from npm, pinned)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from .livekit_server import free_port

WEB = Path(__file__).resolve().parents[3] / "web"
HLS_JS = WEB / "node_modules" / "hls.js" / "dist"


@contextlib.asynccontextmanager
async def serving(recordings: Path) -> AsyncIterator[str]:
    """``recordings`` (a folder of recording folders) at ``{url}/rec/``, the player at
    ``{url}/player.html``; yields ``url``."""
    if not (HLS_JS / "hls.min.js").exists():
        raise RuntimeError(f"{HLS_JS} is missing: scripts/setup installs hls.js with npm")
    app = web.Application()
    app.router.add_static("/hls/", HLS_JS)
    app.router.add_static("/rec/", recordings)

    async def player(request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB / "player.html")

    app.router.add_get("/player.html", player)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
