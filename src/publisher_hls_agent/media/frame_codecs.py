"""The video codecs read as whole frames (VP8, VP9, AV1): one table of what the readers
need from each, so a reader is written once for all of them. (H.264 is read NAL unit by
NAL unit and has a reader of its own.)"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import av1, blank, vp8, vp9


def _never(frame: bytes) -> bool:
    return False


@dataclass(frozen=True)
class FrameCodec:
    name: str  # as in recording.json and VideoTranscoder: "vp8", "vp9", "av1"
    starts_frame: Callable[[bytes], bool]  # an RTP payload that begins a frame
    depacketize: Callable[[Iterable[bytes]], bytes]  # raises ValueError when damaged
    is_keyframe: Callable[[bytes], bool]  # a frame that decodes on its own
    is_blank: Callable[[bytes], bool] = _never  # the SFU's own keyframe (media/blank.py)


FRAME_CODECS = {  # by RTP mime type, lower case
    "video/vp8": FrameCodec("vp8", vp8.starts_frame, vp8.depacketize, vp8.is_keyframe,
                            blank.is_blank_vp8_keyframe),
    "video/vp9": FrameCodec("vp9", vp9.starts_frame, vp9.depacketize, vp9.is_keyframe),
    "video/av1": FrameCodec("av1", av1.starts_frame, av1.depacketize, av1.is_keyframe),
}
