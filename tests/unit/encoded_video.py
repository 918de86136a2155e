"""Video encoded for real (PyAV's libx264, libvpx, libvpx-vp9, SVT-AV1), for the depacketizing and
transcoding tests: a white bar moving across black, 30 frames a second, 90 kHz stamps."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

FRAME_TICKS = 3000  # 30 fps at 90 kHz
REALTIME_VPX = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}


def encode(codec: str, count: int, width: int = 320, height: int = 240, *,
           keyframe_every: int = 12, options: dict[str, str] | None = None,
           pixel_format: str = "yuv420p") -> list[bytes]:
    """``count`` frames (a keyframe first, then every ``keyframe_every``), in order."""
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, pixel_format
    encoder.time_base, encoder.framerate = Fraction(1, 90_000), Fraction(30)
    encoder.gop_size = keyframe_every
    encoder.options = options or {}
    frames = []
    for index in range(count):
        picture = np.zeros((height, width, 3), np.uint8)
        picture[:, (index * 7) % width:][:, :40] = 255
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format=pixel_format)
        frame.pts = index * FRAME_TICKS
        frames.extend(bytes(packet) for packet in encoder.encode(frame))
    frames.extend(bytes(packet) for packet in encoder.encode(None))
    return frames
