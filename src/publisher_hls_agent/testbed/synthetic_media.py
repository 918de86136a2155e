"""Synthetic media whose content can be checked after recording. No network.

Video: H.264 from libx264 (PyAV), one Annex B access unit per frame, SPS and PPS in
front of every IDR, keyframes at a fixed interval or on request. Each picture shows its
frame number in big seven-segment digits; every ``flash_period_s`` one frame is all white.
Audio: a quiet 440 Hz tone with a loud 1 kHz beep starting on exactly the sample of
each flash, so the offset between flash and beep in a recording is its A/V sync error.
"""

from __future__ import annotations

import fractions
import hashlib
import math
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

from ..media import h264

# Segments of each digit: a top, b top-right, c bottom-right, d bottom, e bottom-left,
# f top-left, g middle.
_DIGIT_SEGMENTS = ["abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc",
                   "abcdefg", "abcdfg"]
WHITE = 235
TONE_HZ, TONE_AMPLITUDE = 440.0, 0.03
BEEP_HZ, BEEP_AMPLITUDE = 1000.0, 0.5


@dataclass(frozen=True, slots=True)
class SyntheticAccessUnit:
    data: bytes  # one whole Annex B access unit
    keyframe: bool
    index: int  # frame number
    timestamp_us: int


def access_unit_digest(annexb: bytes) -> str:
    """SHA-256 of an access unit's NAL units, whatever start codes frame them.

    RTP carries NAL units, not start codes (x264 writes 3-byte ones between NAL units,
    the recorder 4-byte ones), so passthrough is byte identity of the NAL units.
    """
    return hashlib.sha256(h264.to_annexb(h264.split_annexb(annexb))).hexdigest()


def _digit_mask(digit: int, width: int, height: int) -> npt.NDArray[np.bool_]:
    mask = np.zeros((height, width), dtype=bool)
    t = max(2, width // 5)  # stroke thickness
    half = height // 2
    spans = {
        "a": (slice(0, t), slice(0, width)),
        "d": (slice(height - t, height), slice(0, width)),
        "g": (slice(half - t // 2, half + (t + 1) // 2), slice(0, width)),
        "f": (slice(0, half), slice(0, t)),
        "b": (slice(0, half), slice(width - t, width)),
        "e": (slice(half, height), slice(0, t)),
        "c": (slice(half, height), slice(width - t, width)),
    }
    for segment in _DIGIT_SEGMENTS[digit]:
        mask[spans[segment]] = True
    return mask


class SyntheticVideo:
    def __init__(self, width: int = 1280, height: int = 720, fps: int = 30,
                 bitrate: int = 2_000_000, keyframe_interval_s: float = 2.0,
                 flash_period_s: float = 2.0) -> None:
        if width % 2 or height % 2:
            raise ValueError("width and height must be even for yuv420p")
        self.width, self.height, self.fps = width, height, fps
        self.flash_frames = max(1, round(flash_period_s * fps))
        self._index = 0
        self._force_keyframe = False
        self._encoder = self._open_encoder(bitrate, max(1, round(keyframe_interval_s * fps)))
        # The moving background: a diagonal ramp shifted a little every frame.
        ys, xs = np.mgrid[0:height, 0:width]
        self._ramp = ((xs + ys) // 4 % 200 + 16).astype(np.uint8)
        self._chroma = np.full((height // 2, width), 128, dtype=np.uint8)
        digit_h = max(16, height // 8)
        self._digit_w = digit_h // 2
        self._digits = [_digit_mask(d, self._digit_w, digit_h) for d in range(10)]

    def _open_encoder(self, bitrate: int, keyint: int) -> av.VideoCodecContext:
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = self.width, self.height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = fractions.Fraction(1, self.fps)
        encoder.framerate = fractions.Fraction(self.fps, 1)
        encoder.bit_rate = bitrate
        encoder.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",  # no B-frames, no lookahead: one access unit per frame
            "x264-params": (f"keyint={keyint}:min-keyint={keyint}:scenecut=0:"
                            "repeat-headers=1:forced-idr=1:annexb=1:"
                            f"vbv-maxrate={bitrate // 1000}:vbv-bufsize={bitrate // 1000}"),
        }
        encoder.open()
        return encoder

    def flash_frame(self, index: int) -> bool:
        return index % self.flash_frames == 0

    def request_keyframe(self) -> None:
        self._force_keyframe = True

    def _picture(self, index: int) -> npt.NDArray[np.uint8]:
        if self.flash_frame(index):
            luma = np.full((self.height, self.width), WHITE, dtype=np.uint8)
        else:
            luma = self._ramp + np.uint8((index * 3) % 56)
            x = self._digit_w // 2
            for char in f"{index:06d}":
                mask = self._digits[int(char)]
                h, w = mask.shape
                luma[h // 2:h // 2 + h, x:x + w][mask] = WHITE
                x += w + w // 2
        return np.concatenate([luma, self._chroma])

    def next_access_unit(self) -> SyntheticAccessUnit:
        index = self._index
        frame = av.VideoFrame.from_ndarray(self._picture(index), format="yuv420p")
        frame.pts = index
        if self._force_keyframe:
            frame.pict_type = av.video.frame.PictureType.I
            self._force_keyframe = False
        packets = self._encoder.encode(frame)
        if len(packets) != 1:
            raise RuntimeError(f"libx264 gave {len(packets)} packets for frame {index}")
        data = bytes(packets[0])
        has_idr = h264.describe_access_unit(h264.split_annexb(data))[0]
        self._index += 1
        return SyntheticAccessUnit(data, has_idr, index, index * 1_000_000 // self.fps)


class SyntheticAudio:
    def __init__(self, sample_rate: int = 48000, channels: int = 1,
                 beep_period_s: float = 2.0, beep_ms: int = 100) -> None:
        self.sample_rate, self.channels = sample_rate, channels
        self.beep_period = round(beep_period_s * sample_rate)
        self.beep_length = beep_ms * sample_rate // 1000
        self._position = 0

    def beep_start_sample(self, k: int) -> int:
        return k * self.beep_period

    def next_frame(self, samples: int = 480) -> npt.NDArray[np.int16]:
        """``samples`` samples per channel, interleaved int16, continuing the signal."""
        n = np.arange(self._position, self._position + samples)
        self._position += samples
        t = n / self.sample_rate
        signal = TONE_AMPLITUDE * np.sin(2 * math.pi * TONE_HZ * t)
        beeping = (n % self.beep_period) < self.beep_length
        signal = np.where(beeping, BEEP_AMPLITUDE * np.sin(2 * math.pi * BEEP_HZ * t), signal)
        pcm = (signal * 32767).astype(np.int16)
        return np.repeat(pcm, self.channels) if self.channels > 1 else pcm
