"""The demo: a local server, a synthetic publisher and the recorder, on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ..hls.check import check_recording
from ..recorder.recorder import RecorderOptions
from ..recorder.session import RecordingSession
from .livekit_server import LiveKitServer, running_server
from .publisher import SyntheticPublisher, make_token

ROOM = "demo"
PUBLISHER = "synthetic-publisher"


def token(server: LiveKitServer, identity: str, room: str = ROOM) -> str:
    return make_token(server.api_key, server.api_secret, room, identity)


async def run_demo(duration: float, output: Path, width: int, height: int, fps: int,
                   segment_duration: float) -> int:
    with running_server() as server:
        print(f"livekit-server {server.url} (log: {server.log_path})")
        publisher = SyntheticPublisher(server.url, token(server, PUBLISHER), width=width,
                                       height=height, fps=fps)
        await publisher.start()
        print(f"publisher {PUBLISHER!r}: {width}x{height} {fps} fps H.264 + Opus")
        session = RecordingSession(
            server.url, token(server, "publisher-hls-recorder"), ROOM, PUBLISHER,
            RecorderOptions(output_dir=output, segment_duration=segment_duration,
                            auto_activate=True))
        recording = asyncio.create_task(session.run())
        start = time.monotonic()
        while time.monotonic() - start < duration and not recording.done():
            await asyncio.sleep(1.0)
            folder = session.recorder.folder
            segments = len(list(folder.glob("segment*.ts"))) if folder else 0
            print(f"{time.monotonic() - start:5.1f} s  {session.recorder.state.value}, "
                  f"{segments} segments")
        await session.stop()
        summary = await recording
        await publisher.stop()
    if summary is None:
        print("nothing was recorded")
        return 1
    folder = Path(summary["folder"])
    print(f"\nrecording: {folder}  ({summary['duration']:.1f} s, "
          f"{len(summary['segments'])} segments)\n")
    report = check_recording(folder)
    print(report.render())
    return 0 if report.ok else 1
