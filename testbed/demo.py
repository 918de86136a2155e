"""The demo: a local server, the agent worker, a synthetic publisher, all on loopback.

``scripts/demo [--duration S] [--output DIR] ...`` (that is ``python -m testbed.demo``).

The agent runs as its users run it (``publisher-hls-agent run``, configured by
environment variables, in a process of its own); the room is created with the agent's
dispatch as ``dispatch-job`` does; the publisher joins and is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from livekit import api

from publisher_hls_agent.cli.common import setup_logging
from publisher_hls_agent.hls.check import check_recording
from publisher_hls_agent.layout import SUMMARY_NAME

from .agent_process import running_agent
from .livekit_server import LiveKitServer, running_server
from .publisher import SyntheticPublisher, make_token

ROOM = "demo"
PUBLISHER = "synthetic-publisher"
AGENT_NAME = "publisher-hls-recorder"


def token(server: LiveKitServer, identity: str, room: str = ROOM) -> str:
    return make_token(server.api_key, server.api_secret, room, identity)


async def run_demo(duration: float, output: Path, width: int, height: int, fps: int,
                   segment_duration: float) -> int:
    before = _summaries(output)
    logs = Path(tempfile.mkdtemp(prefix="publisher-hls-demo-"))
    with running_server(log_dir=logs) as server:
        print(f"livekit-server {server.url} (log: {server.log_path})")
        async with running_agent(server, output, logs / "agent.log", AGENT_NAME=AGENT_NAME,
                                 AUTO_ACTIVATE_RECORDING="true",
                                 HLS_SEGMENT_DURATION=str(segment_duration)) as agent:
            print(f"agent worker {AGENT_NAME!r} registered (log: {agent.log_path}, "
                  f"HTTP {agent.http_url})")
            async with api.LiveKitAPI(server.http_url, server.api_key,
                                      server.api_secret) as lk:
                await lk.room.create_room(api.CreateRoomRequest(
                    name=ROOM, agents=[api.RoomAgentDispatch(agent_name=AGENT_NAME)]))
            print(f"room {ROOM!r} created with the agent's dispatch")
            publisher = SyntheticPublisher(server.url, token(server, PUBLISHER), width=width,
                                           height=height, fps=fps)
            await publisher.start()
            print(f"publisher {PUBLISHER!r}: {width}x{height} {fps} fps H.264 + Opus")
            start = time.monotonic()
            while time.monotonic() - start < duration:
                await asyncio.sleep(1.0)
                segments = _count(output, f"{ROOM}_{PUBLISHER}_*/segment*")
                print(f"{time.monotonic() - start:5.1f} s  {segments} segments on disk")
            await publisher.stop()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # the agent finalizes once the publisher left
                if _summaries(output) != before:
                    break
                await asyncio.sleep(0.2)
    finished = _summaries(output) - before
    if not finished:
        print(f"nothing was recorded; see {logs}")
        return 1
    summary = json.loads(finished.pop().read_text())
    folder = Path(summary["folder"])
    print(f"\nrecording: {folder}  ({summary['duration']:.1f} s, "
          f"{len(summary['segments'])} segments)\n")
    report = check_recording(folder)
    print(report.render())
    return 0 if report.ok else 1


def _summaries(output: Path) -> set[Path]:
    output.mkdir(parents=True, exist_ok=True)
    return set(output.glob(f"*/{SUMMARY_NAME}"))


def _count(output: Path, pattern: str) -> int:
    return len(list(output.glob(pattern)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/demo", description="A local LiveKit server, the agent worker and a "
        "synthetic publisher, all on loopback: the publisher is recorded to HLS.")
    parser.add_argument("--duration", type=float, default=10.0, metavar="S",
                        help="seconds to record (default 10)")
    parser.add_argument("--output", type=Path, default=Path("publisher-hls-output"),
                        metavar="DIR", help="where the recording goes (default %(default)s)")
    parser.add_argument("--segment-duration", type=float, default=2.0, metavar="S")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    options = parser.parse_args(argv)
    setup_logging("WARNING")
    return asyncio.run(run_demo(duration=options.duration, output=options.output,
                                width=options.width, height=options.height, fps=options.fps,
                                segment_duration=options.segment_duration))


if __name__ == "__main__":
    sys.exit(main())
