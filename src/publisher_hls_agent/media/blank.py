"""The SFU's own "blank" frames, told apart from the publisher's media. Pure.

When a track is muted or unpublished, LiveKit clears its subscribers' decoders by
sending a few frames of its own on the down-track: a fixed 2x2 H.264 or 8x8 VP8
keyframe and a fixed Opus silence frame, time-stamped as if the stream had gone on.
Recorded, they would put a tiny picture (a resolution change) and seconds of made-up
silence at the end of a recording whose publisher had long stopped. They are never the
publisher's: they are dropped. (livekit-server ``pkg/sfu/downtrack.go``:
``H264KeyFrame2x2``, ``VP8KeyFrame8x8``, ``OpusSilenceFrame``.)
"""

from __future__ import annotations

H264_BLANK_SPS = bytes([
    0x67, 0x42, 0xC0, 0x1F, 0x0F, 0xD9, 0x1F, 0x88, 0x88, 0x84, 0x00, 0x00, 0x03, 0x00,
    0x04, 0x00, 0x00, 0x03, 0x00, 0xC8, 0x3C, 0x60, 0xC9, 0x20,
])
VP8_BLANK_KEYFRAME = bytes([
    0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x08, 0x00, 0x08, 0x00, 0x00, 0x47, 0x08, 0x85,
    0x85, 0x88, 0x85, 0x84, 0x88, 0x02, 0x02, 0x00, 0x0C, 0x0D, 0x60, 0x00, 0xFE, 0xFF,
    0xAB, 0x50, 0x80,
])
OPUS_SILENCE = b"\xf8\xff\xfe" + bytes(77)


def is_blank_keyframe(nals: list[bytes]) -> bool:
    """Called for keyframes that carry an SPS only, so the common path pays nothing."""
    return H264_BLANK_SPS in nals


def is_blank_vp8_keyframe(frame: bytes) -> bool:
    """Called for keyframes only; an end-to-end encryption trailer may follow."""
    return frame.startswith(VP8_BLANK_KEYFRAME)


def is_blank_audio(payload: bytes) -> bool:
    return len(payload) == len(OPUS_SILENCE) and payload == OPUS_SILENCE
