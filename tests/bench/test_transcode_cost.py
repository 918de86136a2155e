"""What a VP8 publisher costs: one 720p30 stream transcoded to H.264 as the recorder
does it (libvpx decode, x264 veryfast/zerolatency), CPU time of the whole process per
second of video. The source is FFmpeg's testsrc2 (motion, detail, a counter) encoded
to VP8 at 2 Mbit/s by libvpx in real-time mode, as a WebRTC sender would."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import av
import pytest

from publisher_hls_agent.media.transcode import VideoTranscoder

pytestmark = pytest.mark.bench

SECONDS = 20


@pytest.mark.parametrize("size", [(1280, 720), (640, 360)], ids=["720p30", "360p30"])
def test_transcoding_cost_per_stream(tmp_path: Path, size: tuple[int, int]) -> None:
    width, height = size
    source = tmp_path / "camera.webm"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
         f"testsrc2=size={width}x{height}:rate=30", "-t", str(SECONDS),
         "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "2M",
         "-g", "3000", str(source)], check=True)
    with av.open(str(source)) as container:
        frames = [(bytes(p), i * 3000) for i, p in enumerate(container.demux(video=0))
                  if p.size]
    transcoder = VideoTranscoder("vp8", size)
    out_bytes = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for index, (frame, timestamp) in enumerate(frames):
        if index % 60 == 0:
            transcoder.force_keyframe()  # a 2 s segment's keyframe request
        out_bytes += sum(len(p.data) for p in transcoder.transcode(frame, timestamp))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    video_seconds = len(frames) / 30
    print(f"\ntranscode VP8 -> H.264 {width}x{height}@30: {100 * cpu / video_seconds:.1f} % "
          f"of a core (CPU s per s of video, all threads), {len(frames) / wall:.0f} fps "
          f"throughput, output {8 * out_bytes / video_seconds / 1e6:.2f} Mbit/s")
    assert len(frames) == 30 * SECONDS
