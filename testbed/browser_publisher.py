"""A publisher that is a real browser: ``web/publisher.html`` runs livekit-client in
headless Chromium, which encodes its fake camera and microphone with its own WebRTC
stack (OpenH264 or libvpx, Opus), as a participant's browser would."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .browser import Page, chromium
from .web_server import serving


@contextlib.asynccontextmanager
async def browser_publishing(url: str, token: str, codec: str, *, width: int = 1280,
                             height: int = 720, fps: int = 30, backup_codec: bool = False,
                             scratch: Path, capture_files: tuple[Path, Path] | None = None,
                             passphrase: str = "") -> AsyncIterator[Page]:
    """Chromium publishing its camera (as ``codec``: "h264", "vp8", "vp9", "av1") and
    microphone into the room ``token`` admits it to, until the block ends; with
    ``backup_codec``, a VP8 copy as well (see ``web/publisher.html``). ``scratch`` is an
    empty folder the page server may use; ``capture_files``: a Y4M and a WAV its camera
    and microphone play (``testbed/capture_files.py``) instead of Chromium's own;
    ``passphrase``: end-to-end encrypted with that shared key (livekit-client's E2EE)."""
    async with serving(scratch) as web_url, chromium(fake_media=True,
                                                     capture_files=capture_files) as page:
        await page.goto(f"{web_url}/publisher.html")
        await page.evaluate(f"window.publish({json.dumps(url)}, {json.dumps(token)}, "
                            f"{json.dumps(codec)}, {width}, {height}, {fps}, "
                            f"{json.dumps(backup_codec)}, {json.dumps(passphrase)})")
        try:
            yield page
        finally:
            with contextlib.suppress(Exception):
                await page.evaluate("window.leave()")


async def sent(page: Page) -> list[dict[str, Any]]:
    """What the browser's encoders report: codec, frames encoded, size, per stream."""
    streams: list[dict[str, Any]] = await page.evaluate("window.sent()")
    return streams


async def video_sent(page: Page, within: float = 20) -> list[dict[str, Any]]:
    """The video streams, once the browser has encoded some video."""
    async with asyncio.timeout(within):
        while True:
            video = [s for s in await sent(page) if s["kind"] == "video"]
            if any(s["frames"] for s in video):
                return video
            await asyncio.sleep(0.2)
