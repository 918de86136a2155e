"""An fMP4 recording whose H.264 publisher changes its picture size, twice, made by the
writer from libx264's frames: 320x240, then 640x360, then 320x240 again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from publisher_hls_agent.hls.fmp4_writer import Fmp4HlsWriter

from .encoded_video import FRAME_TICKS, encode

X264 = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
SIZES = ((320, 240), (640, 360), (320, 240))
FRAMES_PER_SIZE = 60  # two segments of 1 s each


def write_size_changes(folder: Path) -> None:
    writer = Fmp4HlsWriter(folder, video=True, audio_channels=None, video_size=(640, 360),
                           segment_duration=1.0, max_segments=0,
                           started_at=datetime(2026, 1, 1, tzinfo=UTC))
    index = 0
    for part, (width, height) in enumerate(SIZES):
        frames = encode("libx264", FRAMES_PER_SIZE, width, height, keyframe_every=30,
                        options=X264)
        for number, frame in enumerate(frames):
            pts = index * FRAME_TICKS
            if number % 30 == 0:  # a keyframe: a segment, after a discontinuity if new
                writer.start_segment(pts, discontinuity=part > 0 and number == 0)
            writer.write_video(frame, pts, number % 30 == 0)
            index += 1
    writer.finish(index * FRAME_TICKS)
