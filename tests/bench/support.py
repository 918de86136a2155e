"""What the benchmarks share: a publisher in its own process, so that the figures are
the agent side's alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from testbed import ROOT, module_command
from testbed.livekit_server import LiveKitServer


@contextlib.asynccontextmanager
async def publisher_process(server: LiveKitServer, room: str, identity: str, seconds: float,
                            width: int = 1280, height: int = 720, fps: int = 30,
                            bitrate: int = 2_000_000
                            ) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        *module_command("publisher"), "--url", server.url,
        "--api-key", server.api_key, "--api-secret", server.api_secret, "--room", room,
        "--identity", identity, "--width", str(width), "--height", str(height),
        "--fps", str(fps), "--bitrate", str(bitrate), "--duration", str(seconds),
        stdout=asyncio.subprocess.DEVNULL, cwd=ROOT)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
