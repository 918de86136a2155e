"""Files for Chromium's fake capture devices (``--use-file-for-fake-video-capture``,
``--use-file-for-fake-audio-capture``): a picture that flashes white and a sound that
beeps at the same instants, so that a browser publisher's A/V offset can be read back
from a recording (``tests/integration/test_browser_publisher.py``). Chromium loops both
files: they are exactly as long as each other, a whole number of flash periods."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from .synthetic_media import WHITE, SyntheticAudio

DARK = 40  # the picture between flashes: dark, not black, with a little texture
FLASH_FRAMES = 3  # 100 ms at 30 fps: an encoder under pressure still shows it


def write_flashing_y4m(path: Path, *, width: int, height: int, fps: int, seconds: int,
                       period: float) -> None:
    """Planar 4:2:0 frames: white for ``FLASH_FRAMES`` every ``period`` seconds."""
    every = round(period * fps)
    texture = (DARK + (np.indices((height, width)).sum(axis=0) // 8 % 2) * 8).astype(np.uint8)
    dark = texture.tobytes()
    white = bytes([WHITE]) * (width * height)
    chroma = bytes([128]) * (2 * (width // 2) * (height // 2))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for index in range(seconds * fps):
            out.write(b"FRAME\n")
            out.write(white if index % every < FLASH_FRAMES else dark)
            out.write(chroma)


def write_beeping_wav(path: Path, *, seconds: int, period: float,
                      sample_rate: int = 48000) -> None:
    """Mono 16-bit PCM: a quiet tone, a loud beep at the start of every ``period``."""
    audio = SyntheticAudio(sample_rate=sample_rate, beep_period_s=period, beep_ms=100)
    pcm = audio.next_frame(seconds * sample_rate)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
