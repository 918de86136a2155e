"""VP8 over RTP (RFC 7741): frames out of payloads, and what their headers say. Pure.

Each payload starts with a payload descriptor (1 to 6 bytes); the first packet of a
frame has S=1 and partition index 0, and the frame's own header starts right after it:
bit 0 of its first byte is 0 for a keyframe, whose header then carries the picture size
(RFC 6386, 9.1).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import Vp8PayloadError

KEYFRAME_START_CODE = b"\x9d\x01\x2a"


def descriptor_length(payload: bytes) -> int:
    """How many bytes the payload descriptor takes at the start of ``payload``."""
    length = 1
    if payload and payload[0] & 0x80:  # X: an extension byte follows
        if len(payload) < 2:
            raise Vp8PayloadError("truncated VP8 payload descriptor")
        extension = payload[1]
        length = 2
        if extension & 0x80:  # I: a picture id, 7 or 15 bits
            if len(payload) < 3:
                raise Vp8PayloadError("truncated VP8 picture id")
            length += 2 if payload[2] & 0x80 else 1
        if extension & 0x40:  # L: TL0PICIDX
            length += 1
        if extension & 0x30:  # T or K: TID/Y/KEYIDX
            length += 1
    if len(payload) <= length:
        raise Vp8PayloadError("VP8 payload without data")
    return length


def starts_frame(payload: bytes) -> bool:
    """Whether an RTP payload is the first packet of a frame (S=1, partition 0)."""
    return bool(payload) and payload[0] & 0x1F == 0x10


def depacketize(payloads: Iterable[bytes]) -> bytes:
    """One frame from the payloads of its packets, in sequence order."""
    parts = []
    for index, payload in enumerate(payloads):
        if index == 0 and not starts_frame(payload):
            raise Vp8PayloadError("VP8 frame does not begin with its first partition")
        parts.append(payload[descriptor_length(payload):])
    if not parts:
        raise Vp8PayloadError("empty VP8 frame")
    return b"".join(parts)


def is_keyframe(frame: bytes) -> bool:
    return bool(frame) and not frame[0] & 0x01


def keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """A keyframe's picture width and height; None for other frames or damaged ones."""
    if not is_keyframe(frame) or len(frame) < 10 or frame[3:6] != KEYFRAME_START_CODE:
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return width, height
