"""Synthetic media whose content can be checked after recording. No network.

Video: H.264 from libx264 (PyAV), one Annex B access unit per frame, SPS and PPS in
front of every IDR, keyframes at a fixed interval or on request. Each picture shows its
frame number in big seven-segment digits over a scrolling texture; every
``flash_period_s`` one frame is entirely white.

Audio: a quiet 440 Hz tone with a loud 1 kHz beep starting on exactly the sample of
each flash, so the offset between flash and beep in a recording is its A/V sync error.
"""

from __future__ import annotations

import fractions
import hashlib
import math
from dataclasses import dataclass
from typing import ClassVar

import av
import numpy as np
import numpy.typing as npt

from publisher_hls_agent.media import h264

WHITE = 235  # nominal white of limited-range video: what a decoder shows as full white
BLACK = 16
NEUTRAL_CHROMA = 128

TONE_HZ = 440.0
TONE_DBFS = -30.0
BEEP_HZ = 1000.0
BEEP_DBFS = -6.0
TONE_AMPLITUDE = 10 ** (TONE_DBFS / 20)  # ~0.032 of full scale
BEEP_AMPLITUDE = 10 ** (BEEP_DBFS / 20)  # ~0.50 of full scale

# Segments lit for each digit: a top, b top right, c bottom right, d bottom,
# e bottom left, f top left, g middle.
_DIGIT_SEGMENTS = (
    "abcdef",
    "bc",
    "abdeg",
    "abcdg",
    "bcfg",
    "acdfg",
    "acdefg",
    "abc",
    "abcdefg",
    "abcdfg",
)
_COUNTER_DIGITS = 6  # enough for 9 hours at 30 fps; more digits appear if needed
_TEXTURE_PERIOD = 64  # pixels: the background repeats, so a scrolled window is seamless
_SCROLL_X, _SCROLL_Y = 4, 2  # pixels per frame: real motion for the encoder to find


@dataclass(frozen=True, slots=True)
class SyntheticAccessUnit:
    """One encoded frame, exactly as it is handed to the publisher."""

    data: bytes  # one whole Annex B access unit
    keyframe: bool  # holds an IDR slice (and then SPS and PPS in front of it)
    index: int  # frame number: what the picture shows, and its flash schedule
    timestamp_us: int  # index * 1e6 / fps: media time of this frame


def access_unit_digest(annexb: bytes) -> str:
    """SHA-256 of an access unit's NAL units, whatever start codes frame them.

    RTP carries NAL units, not start codes (x264 writes 3-byte ones between NAL units,
    the recorder 4-byte ones), so passthrough is byte identity of the NAL units.
    """
    return hashlib.sha256(h264.to_annexb(h264.split_annexb(annexb))).hexdigest()


def _digit_mask(digit: int, width: int, height: int) -> npt.NDArray[np.bool_]:
    """A seven-segment digit as a boolean bitmap: the whole font, no PIL."""
    mask = np.zeros((height, width), dtype=bool)
    stroke = max(2, width // 5)
    half = height // 2
    spans = {
        "a": (slice(0, stroke), slice(0, width)),
        "d": (slice(height - stroke, height), slice(0, width)),
        "g": (slice(half - stroke // 2, half + (stroke + 1) // 2), slice(0, width)),
        "f": (slice(0, half), slice(0, stroke)),
        "b": (slice(0, half), slice(width - stroke, width)),
        "e": (slice(half, height), slice(0, stroke)),
        "c": (slice(half, height), slice(width - stroke, width)),
    }
    for segment in _DIGIT_SEGMENTS[digit]:
        mask[spans[segment]] = True
    return mask


def _texture(height: int, width: int) -> npt.NDArray[np.uint8]:
    """A periodic luma texture one period larger than the picture in both directions.

    Smooth waves plus fixed pseudo-random grain: the grain keeps intra frames from
    being trivially compressible, the scrolling gives P frames real motion vectors.
    Computed once; each frame is a view into it.
    """
    period = _TEXTURE_PERIOD
    ys = np.arange(height + period)[:, None]
    xs = np.arange(width + period)[None, :]
    waves = 40 * np.sin(2 * np.pi * xs / period) + 30 * np.sin(2 * np.pi * ys / period)
    grain = np.random.default_rng(7).integers(-12, 13, size=(period, period))
    grain = np.tile(grain, ((height + period) // period + 1, (width + period) // period + 1))
    texture = 110 + waves + grain[: height + period, : width + period]
    clipped: npt.NDArray[np.uint8] = np.clip(texture, BLACK, 200).astype(np.uint8)
    return clipped


class SyntheticVideo:
    """Pictures with a frame counter and flashes, encoded to H.264 by libx264."""

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: int = 30,
        bitrate: int = 2_000_000,
        keyframe_interval_s: float = 2.0,
        flash_period_s: float = 2.0,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError("width and height must be even for yuv420p")
        if fps <= 0 or bitrate <= 0:
            raise ValueError("fps and bitrate must be positive")
        self.width = width
        self.height = height
        self.fps = fps
        self.bitrate = bitrate
        self.keyframe_interval = max(1, round(keyframe_interval_s * fps))  # frames
        self.flash_interval = max(1, round(flash_period_s * fps))  # frames
        self._next_index = 0
        self._force_keyframe = False
        self._encoder = self._open_encoder()
        self._texture = _texture(height, width)
        # from_ndarray copies, so one buffer is reused for every picture.
        self._picture = np.empty((height * 3 // 2, width), dtype=np.uint8)
        digit_height = max(10, height // 5)
        self._digit_width = digit_height // 2
        self._digits = [_digit_mask(d, self._digit_width, digit_height) for d in range(10)]

    @property
    def next_index(self) -> int:
        """The frame number the next ``next_access_unit`` will encode."""
        return self._next_index

    def _open_encoder(self) -> av.VideoCodecContext:
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width = self.width
        encoder.height = self.height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = fractions.Fraction(1, self.fps)
        encoder.framerate = fractions.Fraction(self.fps, 1)
        encoder.bit_rate = self.bitrate
        keyint = self.keyframe_interval
        kbps = self.bitrate // 1000
        encoder.options = {
            "preset": "ultrafast",
            # zerolatency: no B-frames, no lookahead, no frame threading, so every input
            # frame comes straight back as exactly one access unit.
            "tune": "zerolatency",
            # An AVOption of libavcodec's wrapper, not an x264 parameter (x264-params
            # rejects it): a frame forced to I becomes an IDR, not a recovery point.
            "forced-idr": "1",
            "x264-params": ":".join(
                (
                    f"keyint={keyint}",
                    f"min-keyint={keyint}",
                    "scenecut=0",  # the flash frames must not add keyframes
                    "bframes=0",
                    "repeat-headers=1",  # SPS + PPS in front of every IDR
                    "annexb=1",
                    # A capped rate, like a WebRTC camera: no multi-second bursts.
                    f"vbv-maxrate={kbps}",
                    f"vbv-bufsize={kbps}",
                )
            ),
        }
        encoder.open()
        return encoder

    def flash_frame(self, index: int) -> bool:
        """Whether frame ``index`` is an all-white flash frame."""
        return index % self.flash_interval == 0

    def request_keyframe(self) -> None:
        """Make the next encoded frame an IDR (with SPS and PPS)."""
        self._force_keyframe = True

    def skip(self, frames: int) -> None:
        """Advance the frame number without encoding: frames a camera never sent.

        Keeps picture content on the wall clock across pauses and late ticks, so a
        flash still lines up with its beep after them.
        """
        if frames < 0:
            raise ValueError("cannot skip backwards")
        self._next_index += frames

    def picture(self, index: int) -> npt.NDArray[np.uint8]:
        """The yuv420p picture of frame ``index`` as an (h*3/2, w) array (a reused buffer)."""
        height, width = self.height, self.width
        luma = self._picture[:height]
        chroma = self._picture[height:]
        if self.flash_frame(index):
            luma.fill(WHITE)
            chroma.fill(NEUTRAL_CHROMA)
            return self._picture
        period = _TEXTURE_PERIOD
        dx, dy = (index * _SCROLL_X) % period, (index * _SCROLL_Y) % period
        np.copyto(luma, self._texture[dy : dy + height, dx : dx + width])
        self._draw_counter(luma, index)
        # A slow colour drift: U and V planes each take a quarter of the luma rows.
        quarter = height // 4
        chroma[:quarter].fill(NEUTRAL_CHROMA + round(24 * math.sin(index / 45)))
        chroma[quarter:].fill(NEUTRAL_CHROMA + round(24 * math.cos(index / 60)))
        return self._picture

    def _draw_counter(self, luma: npt.NDArray[np.uint8], index: int) -> None:
        digit_height, digit_width = self._digits[0].shape
        gap = digit_width // 2
        fits = max(1, (self.width - gap) // (digit_width + gap))
        text = f"{index:0{_COUNTER_DIGITS}d}"[-fits:]  # the low digits if it cannot fit
        top = (self.height - digit_height) // 2
        # A dark box keeps the white digits legible on any background.
        right = gap + len(text) * (digit_width + gap)
        luma[top - gap // 2 : top + digit_height + gap // 2, gap // 2 : right - gap // 2] = BLACK
        left = gap
        for char in text:
            cell = luma[top : top + digit_height, left : left + digit_width]
            cell[self._digits[int(char)]] = WHITE
            left += digit_width + gap

    def next_access_unit(self) -> SyntheticAccessUnit:
        """Encode the next frame; exactly one access unit per frame, or RuntimeError."""
        index = self._next_index
        frame = av.VideoFrame.from_ndarray(self.picture(index), format="yuv420p")
        frame.pts = index
        if self._force_keyframe:
            frame.pict_type = av.video.frame.PictureType.I
            self._force_keyframe = False
        packets = self._encoder.encode(frame)
        if len(packets) != 1:
            # zerolatency promises this; a wrong build or option would break passthrough.
            raise RuntimeError(f"libx264 gave {len(packets)} packets for frame {index}")
        data = bytes(packets[0])
        keyframe = h264.describe_access_unit(h264.split_annexb(data))[0]
        self._next_index = index + 1
        return SyntheticAccessUnit(
            data=data,
            keyframe=keyframe,
            index=index,
            timestamp_us=index * 1_000_000 // self.fps,
        )


class SyntheticAudio:
    """A quiet tone with loud beeps on the flash instants, as interleaved int16 PCM."""

    def __init__(
        self,
        sample_rate: int = 48000,
        channels: int = 1,
        beep_period_s: float = 2.0,
        beep_ms: int = 100,
    ) -> None:
        if sample_rate <= 0 or channels <= 0:
            raise ValueError("sample_rate and channels must be positive")
        self.sample_rate = sample_rate
        self.channels = channels
        self.beep_period = round(beep_period_s * sample_rate)  # samples
        self.beep_length = beep_ms * sample_rate // 1000  # samples
        if not 0 < self.beep_length < self.beep_period:
            raise ValueError("a beep must be shorter than the beep period")
        self._position = 0  # samples per channel produced so far
        self.silent = False  # a microphone that hears nothing: zeros, the clock going on

    @property
    def position(self) -> int:
        """Samples (per channel) produced so far: the index of the next sample."""
        return self._position

    def beep_start_sample(self, k: int) -> int:
        """The first sample of beep ``k`` (beep 0 starts the stream)."""
        return k * self.beep_period

    def next_frame(self, samples: int = 480) -> npt.NDArray[np.int16]:
        """``samples`` samples per channel, interleaved int16, continuing the signal."""
        n = np.arange(self._position, self._position + samples)
        self._position += samples
        if self.silent:
            return np.zeros(samples * self.channels, dtype=np.int16)
        since_beep = n % self.beep_period
        beeping = since_beep < self.beep_length
        # Tone phase follows the absolute sample: no click at frame boundaries.
        signal = TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ / self.sample_rate * n)
        # The beep starts at its peak (cosine), so its first sample is already loud:
        # its onset is visible to the sample, before and after encoding.
        beep = BEEP_AMPLITUDE * np.cos(2 * np.pi * BEEP_HZ / self.sample_rate * since_beep)
        pcm = (np.where(beeping, beep, signal) * 32767).round().astype(np.int16)
        return np.repeat(pcm, self.channels) if self.channels > 1 else pcm


class LoopedVideo:
    """``SyntheticVideo`` encoded once and played in a loop: the benchmark's publishers
    cost almost nothing, so the machine's cores go to what is measured.

    ``loop_s`` seconds are encoded with an IDR every second, once per process and
    size (shared by every publisher of the process). A keyframe request jumps to the
    loop's next IDR, as a real encoder would send one soon.
    """

    _loops: ClassVar[dict[tuple[int, int, int, int, float], list[SyntheticAccessUnit]]] = {}

    def __init__(self, width: int = 1280, height: int = 720, fps: int = 30,
                 bitrate: int = 2_000_000, loop_s: float = 4.0) -> None:
        self.width, self.height, self.fps, self.bitrate = width, height, fps, bitrate
        key = (width, height, fps, bitrate, loop_s)
        if key not in self._loops:
            encoder = SyntheticVideo(width, height, fps, bitrate, keyframe_interval_s=1.0)
            self._loops[key] = [encoder.next_access_unit() for _ in range(round(loop_s * fps))]
        self._units = self._loops[key]
        self._next_index = 0
        self._position = 0  # in the loop

    @property
    def next_index(self) -> int:
        return self._next_index

    def request_keyframe(self) -> None:
        while not self._units[self._position].keyframe:
            self._position = (self._position + 1) % len(self._units)

    def skip(self, frames: int) -> None:
        if frames < 0:
            raise ValueError("cannot skip backwards")
        self._next_index += frames
        self._position = (self._position + frames) % len(self._units)

    def next_access_unit(self) -> SyntheticAccessUnit:
        unit = self._units[self._position]
        index = self._next_index
        self._next_index += 1
        self._position = (self._position + 1) % len(self._units)
        return SyntheticAccessUnit(unit.data, unit.keyframe, index,
                                   index * 1_000_000 // self.fps)
