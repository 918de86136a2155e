"""Video the segments cannot carry (VP8; VP9 and AV1 in MPEG-TS) re-encoded as H.264,
frame for frame. Synchronous.

The only place in the agent that decodes video, and only for codecs that cannot be
passed through. Every source frame gives one H.264 access unit with the source frame's
own timestamp (x264 tuned for zero latency: no lookahead, no B-frames, nothing held
back). Pictures are encoded at the published size: the server switches simulcast layers
(a subscription starts on a low one), and scaling the lower layers up keeps one
continuous stream instead of a new encoder, a new SPS and a discontinuity at each
switch. With no published size, each picture keeps its own and a new size restarts the
encoder on an IDR. Where keyframes fall is the recorder's choice (``force_keyframe``),
not the source's: it asks for one wherever a segment should begin, and gets it on the
next frame instead of waiting for the publisher.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import av
from av.video.frame import PictureType, VideoFrame

from ..errors import TranscodeError
from . import h264
from .codecs import DEFAULT_X264_PRESET, codec_named

X264_OPTIONS = {
    "tune": "zerolatency",
    "maxrate": "6M",  # caps the bitrate of noisy or high-motion pictures
    "bufsize": "12M",
    "forced-idr": "1",
    # No keyframes of x264's own choosing: they come on request (see force_keyframe).
    "x264-params": "keyint=infinite:scenecut=0",
}
NOMINAL_RATE = Fraction(30)  # x264's rate control needs one; timestamps stay the source's


@dataclass(frozen=True)
class EncoderSettings:
    """What x264 trades between CPU and quality (``TRANSCODE_PRESET`` the preset). The
    defaults are measured (``scripts/bench-transcode``, the table in the README): on a
    browser's 720p30 VP8, ultrafast at CRF 28 keeps an SSIM of 0.99 against the source
    for 17 % of a core, decoding included, where veryfast at CRF 23 took 33-43 %; more
    threads only cost more CPU for one stream of this size."""

    preset: str = DEFAULT_X264_PRESET
    crf: int = 28
    threads: int = 1  # 0: x264's own choice
    # Seconds of source media between keyframes forced without being asked (0: only
    # those asked for): the segment duration, so that each segment's cut is there on
    # time however late a request would reach the encoder (room/transcoding.py).
    keyframe_every: float = 0.0

    def options(self) -> dict[str, str]:
        return {**X264_OPTIONS, "preset": self.preset, "crf": str(self.crf),
                **({"threads": str(self.threads)} if self.threads else {})}


@dataclass(frozen=True, slots=True)
class EncodedPicture:
    data: bytes  # H.264, Annex B; SPS and PPS precede every IDR
    rtp_timestamp: int  # the source frame's
    keyframe: bool
    has_parameter_sets: bool


DEFAULT_SETTINGS = EncoderSettings()


class VideoTranscoder:
    def __init__(self, source_codec: str, size: tuple[int, int] | None = None,
                 settings: EncoderSettings = DEFAULT_SETTINGS) -> None:
        self.source_codec = source_codec
        self._settings = settings
        # yuv420p needs even sides
        self._output_size = (size[0] & ~1, size[1] & ~1) if size and min(size) >= 2 else None
        found = codec_named(source_codec).decoder
        assert found is not None, f"{source_codec} is never transcoded"
        decoder, options = found
        self._decoder = cast(av.VideoCodecContext, av.CodecContext.create(decoder, "r"))
        self._decoder.options = dict(options)
        self._encoder: av.VideoCodecContext | None = None
        self._keyframe_wanted = True
        self.size: tuple[int, int] | None = None

    def force_keyframe(self) -> None:
        """Make the next picture an IDR (with SPS and PPS)."""
        self._keyframe_wanted = True

    def transcode(self, frame: bytes, rtp_timestamp: int) -> list[EncodedPicture]:
        """One source frame in; usually one picture out (none while the decoder waits)."""
        packet = av.Packet(frame)
        packet.pts = rtp_timestamp
        try:
            pictures = self._decoder.decode(packet)
        except av.error.FFmpegError as exc:
            raise TranscodeError(f"{self.source_codec} frame not decodable: {exc}") from exc
        return [out for picture in pictures for out in self._encode(picture)]

    def close(self) -> None:
        self._encoder = None

    def _encode(self, picture: VideoFrame) -> list[EncodedPicture]:
        size = self._output_size or (picture.width, picture.height)
        if picture.format.name != "yuv420p" or size != (picture.width, picture.height):
            picture = picture.reformat(width=size[0], height=size[1], format="yuv420p",
                                       interpolation="BILINEAR")
        if self._encoder is None or size != self.size:
            self._encoder = self._open_encoder(*size, self._settings)
            self.size = size
            self._keyframe_wanted = True
        picture.pict_type = PictureType.I if self._keyframe_wanted else PictureType.NONE
        self._keyframe_wanted = False
        encoded = []
        for packet in self._encoder.encode(picture):
            data = bytes(packet)
            has_sps = has_pps = False
            if packet.is_keyframe:
                _, has_sps, has_pps = h264.describe_access_unit(h264.split_annexb(data))
            assert packet.pts is not None  # x264 keeps every frame's timestamp
            encoded.append(EncodedPicture(data, packet.pts, packet.is_keyframe,
                                          has_sps and has_pps))
        return encoded

    @staticmethod
    def _open_encoder(width: int, height: int,
                      settings: EncoderSettings) -> av.VideoCodecContext:
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = width, height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = Fraction(1, 90_000)
        encoder.framerate = NOMINAL_RATE
        encoder.options = settings.options()
        return encoder
