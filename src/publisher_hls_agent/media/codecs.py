"""The video codecs the agent records, one descriptor each, and the recording format.

What each codec needs, wherever in the agent it is needed: how its RTP payloads start a
frame and are put together (its module), how a keyframe and the SFU's blank frame look,
in which containers it is kept as it came and which FFmpeg decoder takes it when it must
be transcoded to H.264, and what the recorder's answers must add to aiortc's codec table
to receive it. The fMP4 sample entries are in ``hls/fmp4_video.py`` and the MPEG-TS
stream type in ``hls/mpegts.py``, by the same name (``tests/unit/test_codecs.py`` holds
them to this table). Adding a codec is its module and one line in ``VIDEO_CODECS``.

H.264 is read NAL unit by NAL unit (``room/tracks.H264Reader``: parameter sets, the
blank keyframe); the others as whole frames by one reader for all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import av1, blank, h264, vp8, vp9

TS, FMP4 = "ts", "fmp4"  # the segment containers


def _never(frame: bytes) -> bool:
    return False


@dataclass(frozen=True)
class VideoCodec:
    name: str  # as in recording.json and the writers: "h264", "vp8", "vp9", "av1"
    mime: str  # as the SFU names it, lower case
    starts_frame: Callable[[bytes], bool]  # an RTP payload that begins a frame
    # An RTP payload that begins a keyframe, for the reassembler to jump to after a
    # loss for good (None: it waits the reorder window out).
    starts_keyframe: Callable[[bytes], bool] | None = None
    # Whole-frame codecs: the frame from its payloads (raises the codec's MediaError
    # when damaged), whether it decodes on its own, whether it is the SFU's own blank
    # keyframe (media/blank.py). None for H.264, whose reader works by NAL unit.
    depacketize: Callable[[Iterable[bytes]], bytes] | None = None
    is_keyframe: Callable[[bytes], bool] | None = None
    is_blank: Callable[[bytes], bool] = _never
    # A keyframe's picture size, where its header says it plainly (a simulcast track
    # begins on its top layer, media/top_layer.py). None: VP9 and AV1, whose spatial
    # layers all come in one picture; H.264's is in its SPS (h264.sps_size).
    keyframe_size: Callable[[bytes], tuple[int, int] | None] | None = None
    # A picture's frames each sealed on its own by end-to-end encryption (VP9's spatial
    # layers), and the picture from them again. None: the picture is one frame.
    layers: tuple[Callable[[bytes], list[bytes]], Callable[[list[bytes]], bytes]] | None = None
    passthrough: frozenset[str] = frozenset()  # containers that carry it as it came
    decoder: tuple[str, dict[str, str]] | None = None  # FFmpeg's, to transcode it
    # What the recorder's answers add to aiortc's codec table (payload type, fmtp);
    # None: aiortc knows it already.
    negotiation: tuple[int, dict[str, int]] | None = None


VIDEO_CODECS = {codec.mime: codec for codec in (
    VideoCodec("h264", "video/h264", h264.starts_access_unit, h264.starts_keyframe,
               passthrough=frozenset({TS, FMP4})),
    VideoCodec("vp8", "video/vp8", vp8.starts_frame, None, vp8.depacketize, vp8.is_keyframe,
               blank.is_blank_vp8_keyframe, vp8.keyframe_size, decoder=("libvpx", {})),
    VideoCodec("vp9", "video/vp9", vp9.starts_frame, None, vp9.depacketize, vp9.is_keyframe,
               layers=(vp9.layer_frames, vp9.superframe),
               passthrough=frozenset({FMP4}), decoder=("libvpx-vp9", {}),
               negotiation=(103, {"profile-id": 0})),
    # dav1d holds frames back to decode several at once unless told not to: one
    # picture out per frame in keeps the source's timing.
    VideoCodec("av1", "video/av1", av1.starts_frame, None, av1.depacketize, av1.is_keyframe,
               passthrough=frozenset({FMP4}), decoder=("libdav1d", {"max_frame_delay": "1"}),
               negotiation=(105, {})),
)}
TRANSCODED_TO = VIDEO_CODECS["video/h264"]  # what a codec that cannot pass through becomes
# x264's presets that TRANSCODE_PRESET may name, fastest first, and the default: the
# cheapest that keeps the quality, by measurement (scripts/bench-transcode, README).
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
DEFAULT_X264_PRESET = "ultrafast"


def codec_named(name: str) -> VideoCodec:
    """The codec whose ``name`` is ``name``; KeyError for none."""
    return next(codec for codec in VIDEO_CODECS.values() if codec.name == name)


@dataclass(frozen=True)
class RecordingFormat:
    """What a recording's segments are, decided once from the configuration: the
    container, the audio codec in it, and the video codecs it carries as they came
    (by mime type; any other recordable one is transcoded to H.264)."""

    container: str  # TS or FMP4
    audio_codec: str  # "aac" in MPEG-TS, "opus" (kept as it came) in fMP4

    @classmethod
    def for_container(cls, container: str) -> RecordingFormat:
        if container not in (TS, FMP4):
            raise ValueError(f"no such segment container: {container!r}")
        return cls(container, "aac" if container == TS else "opus")

    @property
    def keeps_opus(self) -> bool:
        return self.audio_codec == "opus"

    @property
    def passthrough_video(self) -> frozenset[str]:
        return frozenset(mime for mime, codec in VIDEO_CODECS.items()
                         if self.container in codec.passthrough)
