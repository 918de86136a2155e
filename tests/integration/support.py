"""Helpers the integration tests share."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from testbed import ROOT, module_command
from testbed.agent_process import AgentProcess, running_agent
from testbed.livekit_server import LiveKitServer
from testbed.publisher import SyntheticPublisher, make_token

from publisher_hls_agent.recorder.options import RecorderOptions
from publisher_hls_agent.worker.session import RecordingSession


def token(server: LiveKitServer, room: str, identity: str) -> str:
    return make_token(server.api_key, server.api_secret, room, identity)


@contextlib.asynccontextmanager
async def publishing(server: LiveKitServer, room: str, identity: str,
                     **options: Any) -> AsyncIterator[SyntheticPublisher]:
    """A synthetic publisher in ``room`` for the duration of the block."""
    publisher = SyntheticPublisher(server.url, token(server, room, identity), **options)
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()


@contextlib.asynccontextmanager
async def publisher_process(server: LiveKitServer, room: str, identity: str,
                            *options: str) -> AsyncIterator[None]:
    """The synthetic publisher as a process of its own (a peer that does not share the
    recorder's event loop), looped and with RED audio unless ``options`` say more."""
    process = await asyncio.create_subprocess_exec(
        *module_command("publisher"), "--url", server.url,
        "--api-key", server.api_key, "--api-secret", server.api_secret, "--room", room,
        "--identity", identity, "--looped", "--red", *options,
        stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert line.startswith(b"publishing"), line
        yield
    finally:
        if process.returncode is None:
            process.terminate()
        await process.communicate()


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
    """The agent worker named ``name``, recording into ``tmp_path/out`` with 1 s
    segments and auto activation unless ``settings`` say otherwise."""
    await asyncio.to_thread(tmp_path.mkdir, parents=True, exist_ok=True)
    settings = {"AGENT_NAME": name, "HLS_SEGMENT_DURATION": "1",
                "AUTO_ACTIVATE_RECORDING": "true", "RECORDING_PROCESSES": "2", **settings}
    async with running_agent(server, tmp_path / "out", tmp_path / f"{name}.log",
                             **settings) as process:
        yield process


def recordings(output: Path) -> dict[str, Path]:
    """Finished recordings by participant, from their summaries."""
    found = {}
    for summary in output.glob("*/recording.json"):
        found[json.loads(summary.read_text())["participant"]] = summary.parent
    return found


async def wait_for(condition: Callable[[], bool], within: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if condition():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def record_for(server: LiveKitServer, room: str, identity: str, seconds: float,
                     options: RecorderOptions) -> dict[str, Any]:
    """Record ``identity`` (already publishing) for ``seconds`` with a session of our own;
    the recording's summary."""
    session = RecordingSession(server.url, token(server, room, "recorder"), room, identity,
                               options, answer_rpc=False)
    task = asyncio.create_task(session.run())
    await asyncio.sleep(seconds)
    await session.stop()
    summary = await task
    assert summary is not None, "nothing was recorded"
    return summary


def ffmpeg_complaints(path: Path) -> str:
    """What ffmpeg says (warnings and worse) while playing ``path`` through.

    The decoded frames keep the input's 90 kHz time base (``-enc_time_base -1``): in the
    default 1/frame-rate base, two frames a publisher stamped 27-30 ms apart (the SDK
    stamps its first frames so when they leave late) can round to one tick, and the null muxer
    reports a "non monotonically increasing dts" the recording does not have.
    """
    return subprocess.run(["ffmpeg", "-v", "warning", "-i", str(path), "-enc_time_base", "-1",
                           "-f", "null", "-"],
                          capture_output=True, text=True, check=True).stderr.strip()


def ffprobe_streams(path: Path) -> dict[str, dict[str, Any]]:
    """ffprobe's description of each stream of ``path``, by kind (video, audio)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return {stream["codec_type"]: stream for stream in json.loads(out)["streams"]}
