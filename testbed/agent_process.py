"""The agent worker as its users run it: ``publisher-hls-agent run`` in a process of
its own, configured by environment variables, for the demo and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from livekit import api

from .livekit_server import LiveKitServer, free_port

READY_TIMEOUT = 30.0


@dataclass
class AgentProcess:
    process: asyncio.subprocess.Process
    http_url: str
    log_path: Path
    api_key: str
    api_secret: str

    def control_token(self, room: str | None = None) -> str:
        """A token the agent's HTTP API accepts (``roomRecord``, for one room or all)."""
        return (api.AccessToken(self.api_key, self.api_secret).with_identity("operator")
                .with_grants(api.VideoGrants(room_record=True, room=room or "")).to_jwt())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def stop(self, signum: int = signal.SIGTERM, within: float = 60.0) -> int:
        """Signal the agent and wait (``within`` seconds at most) for its exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signum)
        return await asyncio.wait_for(self.process.wait(), within)

    async def kill_all(self) -> None:
        """SIGKILL to the agent and its recording processes at once, as a container
        runtime or the OOM killer does: nobody gets to finish anything."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def wait_ready(self, within: float = READY_TIMEOUT) -> None:
        """Until ``/readyz`` says the worker is registered with the server."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with aiohttp.ClientSession() as session:
            while loop.time() < deadline:
                if self.process.returncode is not None:
                    raise RuntimeError(f"the agent exited ({self.process.returncode}):\n"
                                       f"{self.log()[-3000:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.http_url}/readyz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"the agent was not ready in {within} s:\n{self.log()[-3000:]}")


def agent_environment(server: LiveKitServer, output_dir: Path, http_port: int,
                      **settings: str) -> dict[str, str]:
    return {**os.environ, "LIVEKIT_URL": server.url, "LIVEKIT_API_KEY": server.api_key,
            "LIVEKIT_API_SECRET": server.api_secret, "OUTPUT_DIR": str(output_dir),
            "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(http_port), **settings}


@contextlib.asynccontextmanager
async def running_agent(server: LiveKitServer, output_dir: Path, log_path: Path,
                        *, ready: bool = True, **settings: str) -> AsyncIterator[AgentProcess]:
    """``publisher-hls-agent run`` against ``server``; ``settings`` are more variables
    (``AGENT_NAME=...``). Stopped with SIGTERM at the end of the block if still running."""
    http_port = free_port()
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "publisher_hls_agent", "run",
            env=agent_environment(server, output_dir, http_port, **settings),
            stdout=log, stderr=log, start_new_session=True)  # its own process group
    agent = AgentProcess(process, f"http://127.0.0.1:{http_port}", log_path, server.api_key,
                         server.api_secret)
    try:
        if ready:
            await agent.wait_ready()
        yield agent
    finally:
        if process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await agent.stop()
        if process.returncode is None:
            process.kill()
            await process.wait()
