"""What recording one publisher costs the agent: receive, mux, transcode, write.

One 720p30 ~2 Mbps H.264 + Opus publisher in its own process; the recorder in this one.
Printed: CPU (% of one core, this process's CPU seconds per wall second), the time from
activation to the first segment on disk, and what the recording says it dropped.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from testbed.demo import token
from testbed.livekit_server import LiveKitServer

from publisher_hls_agent.recorder.options import RecorderOptions
from publisher_hls_agent.worker.session import RecordingSession

from .support import publisher_process

pytestmark = pytest.mark.bench

WARM_UP, MEASURE = 5.0, 20.0


@pytest.mark.parametrize("answer_rpc", [True, False], ids=["rpc", "no-rpc"])
@pytest.mark.parametrize("keep_opus", [True, False], ids=["opus-passthrough", "aac"])
async def test_cpu_per_720p30_recording(livekit_server: LiveKitServer, tmp_path: Path,
                                        keep_opus: bool, answer_rpc: bool) -> None:
    room = f"bench-record-{keep_opus}-{answer_rpc}"
    async with publisher_process(livekit_server, room, "bench-publisher",
                                 WARM_UP + MEASURE + 15):
        session = RecordingSession(
            livekit_server.url, token(livekit_server, "bench-recorder", room), room,
            "bench-publisher", RecorderOptions(output_dir=tmp_path, keep_opus=keep_opus),
            answer_rpc=answer_rpc)
        task = asyncio.create_task(session.run())
        await asyncio.sleep(WARM_UP)
        activated = time.monotonic()
        session.activate()
        first_segment = None
        cpu, wall = time.process_time(), time.monotonic()
        while time.monotonic() - wall < MEASURE:
            await asyncio.sleep(0.02)
            folder = session.recorder.folder
            if first_segment is None and folder and any(folder.glob("segment00000.*")):
                first_segment = time.monotonic() - activated
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        await session.stop()
        summary = await task
    assert summary is not None
    frames = summary["frames"]
    print(f"\nrecording cost, one 720p30 stream, {'Opus kept' if keep_opus else 'AAC'}, "
          f"{'answering' if answer_rpc else 'no'} RPC: "
          f"{100 * cpu / wall:.1f} % of one core; first segment on disk "
          f"{first_segment:.2f} s after activation (segments of 2 s); video frames "
          f"{frames['video']}, dropped {frames['dropped']}, lost in transit "
          f"{summary['receive']['video_frames_lost']}")
    assert frames["video"] > 25 * MEASURE * 0.9
