"""The agent as its users run it: ``publisher-hls-agent run`` taking JT_PUBLISHER jobs
from a real LiveKit server, for rooms created with ``dispatch-job``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from publisher_hls_agent.hls.check import check_recording
from publisher_hls_agent.testbed.agent_process import AgentProcess, running_agent
from publisher_hls_agent.testbed.livekit_server import LiveKitServer

from .support import publishing

pytestmark = pytest.mark.integration


async def dispatch_job(server: LiveKitServer, agent_name: str, room: str,
                       metadata: str = "") -> dict[str, str]:
    """``publisher-hls-agent dispatch-job``, as a user types it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "publisher_hls_agent", "dispatch-job", "--room", room,
        *(["--metadata", metadata] if metadata else []),
        env={"LIVEKIT_URL": server.url, "LIVEKIT_API_KEY": server.api_key,
             "LIVEKIT_API_SECRET": server.api_secret, "AGENT_NAME": agent_name,
             "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    created: dict[str, str] = json.loads(out)
    return created


@contextlib.asynccontextmanager
async def agent(server: LiveKitServer, tmp_path: Path, name: str,
                **settings: str) -> AsyncIterator[AgentProcess]:
    async with running_agent(server, tmp_path / "out", tmp_path / f"{name}.log",
                             AGENT_NAME=name, HLS_SEGMENT_DURATION="1",
                             AUTO_ACTIVATE_RECORDING="true", RECORDING_PROCESSES="2",
                             **settings) as process:
        yield process


def recordings(output: Path) -> dict[str, Path]:
    """Finished recordings by participant, from their summaries."""
    found = {}
    for summary in output.glob("*/recording.json"):
        found[json.loads(summary.read_text())["participant"]] = summary.parent
    return found


async def wait_for(condition: object, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def get_json(url: str, token: str | None = None) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as reply:
        body = await reply.text()
        return reply.status, (json.loads(body) if reply.content_type == "application/json"
                              else body)


async def test_three_publishers_three_independent_recordings(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    async with agent(livekit_server, tmp_path, "worker-three") as worker:
        created = await dispatch_job(livekit_server, "worker-three", "three")
        assert created["room"] == "three" and created["agent_name"] == "worker-three"
        async with publishing(livekit_server, "three", "alice"), \
                publishing(livekit_server, "three", "bob"), \
                publishing(livekit_server, "three", "carol"):
            status, listing = await get_json(f"{worker.http_url}/v1/recordings",
                                             worker.control_token())
            await wait_for(lambda: len(list((tmp_path / "out").glob("*/segment00002.ts"))) == 3,
                           30, "three recordings with three segments each")
            status, listing = await get_json(f"{worker.http_url}/v1/recordings",
                                             worker.control_token())
            assert status == 200
            assert isinstance(listing, dict)
            listed = {r["participant"]: r for r in listing["recordings"]}
            assert set(listed) == {"alice", "bob", "carol"}
            assert {r["state"] for r in listed.values()} == {"recording"}
            assert len({r["process"] for r in listed.values()}) == 2  # spread over processes
        await wait_for(lambda: len(recordings(tmp_path / "out")) == 3, 30,
                       "three finalized recordings")
        status, metrics = await get_json(f"{worker.http_url}/metrics")
        assert 'hls_jobs_total{outcome="success"} 3.0' in str(metrics)
        assert "hls_recordings_active 0.0" in str(metrics)
    for participant, folder in recordings(tmp_path / "out").items():
        report = check_recording(folder)
        assert report.ok, (participant, report)
