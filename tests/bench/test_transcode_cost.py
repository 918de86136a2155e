"""What a transcoded publisher costs (VP8 always; VP9 and AV1 for MPEG-TS): one stream
transcoded to H.264 as the recorder does it (libvpx, libvpx-vp9 or dav1d decode, x264
veryfast/zerolatency), CPU time of the whole process per second of video. The source
is FFmpeg's testsrc2 (motion, detail, a counter) encoded at 2 Mbit/s in real-time mode,
as a WebRTC sender would."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import av
import pytest

from publisher_hls_agent.media.transcode import VideoTranscoder

pytestmark = pytest.mark.bench

SECONDS = 20


ENCODERS = {  # as a real-time sender would encode
    "vp8": ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"],
    "av1": ["-c:v", "libsvtav1", "-preset", "12"],
}
CASES = [("vp8", (1280, 720)), ("vp8", (640, 360)), ("vp9", (1280, 720)), ("av1", (1280, 720))]


@pytest.mark.parametrize(("codec", "size"), CASES,
                         ids=[f"{codec}-{height}p30" for codec, (_, height) in CASES])
def test_transcoding_cost_per_stream(tmp_path: Path, codec: str,
                                     size: tuple[int, int]) -> None:
    width, height = size
    source = tmp_path / "camera.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
         f"testsrc2=size={width}x{height}:rate=30", "-t", str(SECONDS), *ENCODERS[codec],
         "-b:v", "2M", "-g", "3000", str(source)], check=True)
    with av.open(str(source)) as container:
        frames = [(bytes(p), i * 3000) for i, p in enumerate(container.demux(video=0))
                  if p.size]
    transcoder = VideoTranscoder(codec, size)
    out_bytes = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for index, (frame, timestamp) in enumerate(frames):
        if index % 60 == 0:
            transcoder.force_keyframe()  # a 2 s segment's keyframe request
        out_bytes += sum(len(p.data) for p in transcoder.transcode(frame, timestamp))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    video_seconds = len(frames) / 30
    print(f"\ntranscode {codec} -> H.264 {width}x{height}@30: {100 * cpu / video_seconds:.1f} % "
          f"of a core (CPU s per s of video, all threads), {len(frames) / wall:.0f} fps "
          f"throughput, output {8 * out_bytes / video_seconds / 1e6:.2f} Mbit/s")
    assert len(frames) == 30 * SECONDS
