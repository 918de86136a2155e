"""How fast ``fix`` rewrites timestamps: the streaming shifter over a typical stream
(720p30 H.264 at ~2 Mbit/s with AAC, made by FFmpeg), on one core, in 1 MiB chunks as
``fix`` reads files."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from publisher_hls_agent.repair.tsrewrite import TimestampShifter, first_timestamp

pytestmark = pytest.mark.bench

CHUNK = 1 << 20


@pytest.mark.parametrize("bitrate", ["2M", "6M"])
def test_timestamp_rewrite_throughput(tmp_path: Path, bitrate: str) -> None:
    source = tmp_path / "source.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "10",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", bitrate, "-g", "60",
         "-c:a", "aac", "-f", "mpegts", str(source)], check=True)
    one = source.read_bytes()
    data = one * max(1, (200 << 20) // len(one))  # ~200 MB
    shifter = TimestampShifter(first_timestamp(one) or 0)
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for position in range(0, len(data), CHUNK):
            shifter.feed(data[position:position + CHUNK])
        shifter.finish()
        best = min(best, time.process_time() - started)
    print(f"\nfix timestamp rewrite, 720p30 at {bitrate}bit/s: {len(data) / 1e6 / best:.0f} MB/s "
          f"on one core ({len(data) / 1e6:.0f} MB, {shifter.rewritten // 3} timestamps)")
