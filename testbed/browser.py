"""Headless Chromium (Debian's package) driven over the DevTools protocol: open a page,
evaluate JavaScript, take a screenshot. A websocket and a few CDP methods are all the
tests need, so no browser-automation package (and no browser download) is involved."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

CANDIDATES = ("chromium", "chromium-browser")
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--no-default-browser-check", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
)

FAKE_MEDIA_FLAGS = (
    "--use-fake-device-for-media-stream=fps=30", "--use-fake-ui-for-media-stream",
    # Real host candidates, not mDNS names the local LiveKit server cannot resolve.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
)


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or a page failed."""


def find_chromium() -> str:
    for name in CANDIDATES:
        if path := shutil.which(name):
            return path
    raise BrowserError("chromium not found: scripts/setup installs Debian's chromium package")


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        await self._ws.send_str(json.dumps({"id": message_id, "method": method,
                                            "params": params}))
        while True:
            frame = await self._ws.receive()
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise BrowserError(f"DevTools connection ended during {method}")
            reply = json.loads(frame.data)
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` (awaited if it is a promise), as JSON."""
        reply = await self.call("Runtime.evaluate", expression=expression,
                                awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in reply:
            raise BrowserError(f"page script failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.call("Page.enable")
        await self.call("Page.navigate", url=url)
        for _ in range(200):
            if await self.evaluate("document.readyState") == "complete":
                return
            await asyncio.sleep(0.05)
        raise BrowserError(f"{url} did not load")

    async def screenshot(self, path: Path) -> None:
        reply = await self.call("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(reply["data"]))


@contextlib.asynccontextmanager
async def chromium(window: str = "1280,800", *, fake_media: bool = False,
                   capture_files: tuple[Path, Path] | None = None) -> AsyncIterator[Page]:
    """A fresh headless Chromium with one blank page; ``fake_media`` gives it Chromium's
    synthetic camera and microphone, granted without a prompt, playing ``capture_files``
    (a Y4M and a WAV, looped) when given instead of its own pictures and beeps."""
    files = (() if capture_files is None else
             (f"--use-file-for-fake-video-capture={capture_files[0]}",
              f"--use-file-for-fake-audio-capture={capture_files[1]}"))
    flags = (*FLAGS, *(FAKE_MEDIA_FLAGS if fake_media else ()), *files)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    process = await asyncio.create_subprocess_exec(
        find_chromium(), *flags, f"--user-data-dir={profile}", f"--window-size={window}",
        "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    drain: asyncio.Task[None] | None = None
    try:
        port = await _devtools_port(process)
        assert process.stderr is not None
        drain = asyncio.create_task(_drain(process.stderr))  # a full pipe would stall it
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as reply:
                targets = await reply.json()
            page_target = next(t for t in targets if t.get("type") == "page")
            async with session.ws_connect(page_target["webSocketDebuggerUrl"],
                                          max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        if drain is not None:
            drain.cancel()
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
        if process.returncode is None:
            process.kill()
            await process.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_port(process: asyncio.subprocess.Process) -> int:
    assert process.stderr is not None
    seen = []
    async with asyncio.timeout(30):
        while line := (await process.stderr.readline()).decode(errors="replace"):
            seen.append(line)
            if match := re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line):
                return int(match.group(1))
    raise BrowserError("chromium did not start: " + "".join(seen[-20:]))


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
