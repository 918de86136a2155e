"""VP9 over RTP (RFC 9628): pictures out of payloads, and what a keyframe says. Pure.

Each payload starts with a payload descriptor. Its B and E bits mark the first and last
packet of a *layer frame*; with spatial layers (SVC, livekit-client's default for VP9)
one picture, one RTP timestamp, holds a frame per layer, lowest first. A picture of
several layer frames is stored as a VP9 superframe (VP9 bitstream spec, Annex B): the
frames back to back, then an index of their sizes, which is how decoders and MP4 take
them. Nothing here decodes: the keyframe test and the picture size come from the first
bytes of the uncompressed header.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import BitsExhausted, Vp9PayloadError
from .bits import BitReader

SYNC_CODE = 0x498342
CS_RGB = 7
HEADER_BYTES = 16  # enough for every field ``keyframe_info`` reads


def descriptor_length(payload: bytes) -> int:
    """How many bytes the payload descriptor takes at the start of ``payload``."""
    if not payload:
        raise Vp9PayloadError("empty VP9 payload")
    flags = payload[0]
    length = 1
    if flags & 0x80:  # I: a picture id, 7 or 15 bits
        if len(payload) < 2:
            raise Vp9PayloadError("truncated VP9 picture id")
        length += 2 if payload[1] & 0x80 else 1
    if flags & 0x20:  # L: layer indices, and TL0PICIDX outside flexible mode
        length += 1 if flags & 0x10 else 2
    if flags & 0x10 and flags & 0x40:  # F and P: up to three reference differences
        for _ in range(3):
            if length >= len(payload):
                raise Vp9PayloadError("truncated VP9 reference indices")
            length += 1
            if not payload[length - 1] & 0x01:
                break
    if flags & 0x02:  # V: the scalability structure
        length = _skip_scalability_structure(payload, length)
    if len(payload) <= length:
        raise Vp9PayloadError("VP9 payload without data")
    return length


def _skip_scalability_structure(payload: bytes, offset: int) -> int:
    if offset >= len(payload):
        raise Vp9PayloadError("truncated VP9 scalability structure")
    header = payload[offset]
    offset += 1
    if header & 0x10:  # Y: a width and height per spatial layer
        offset += 4 * ((header >> 5) + 1)
    if header & 0x08:  # G: the picture group
        if offset >= len(payload):
            raise Vp9PayloadError("truncated VP9 picture group")
        pictures = payload[offset]
        offset += 1
        for _ in range(pictures):
            if offset >= len(payload):
                raise Vp9PayloadError("truncated VP9 picture group")
            offset += 1 + ((payload[offset] >> 2) & 0x03)
    return offset


def starts_frame(payload: bytes) -> bool:
    """Whether a payload begins a layer frame (B=1): the only start a picture can have
    once the server has dropped the layers below the one forwarded."""
    return bool(payload) and bool(payload[0] & 0x08)


def depacketize(payloads: Iterable[bytes]) -> bytes:
    """One picture from the payloads of its packets, in sequence order: a frame, or a
    superframe when it holds a frame per spatial layer."""
    frames: list[bytearray] = []
    for payload in payloads:
        start = descriptor_length(payload)
        if payload[0] & 0x08:
            frames.append(bytearray())
        elif not frames:
            raise Vp9PayloadError("VP9 picture does not begin with the start of a frame")
        frames[-1] += payload[start:]
    if not frames:
        raise Vp9PayloadError("empty VP9 picture")
    if len(frames) == 1:
        return bytes(frames[0])
    return superframe([bytes(f) for f in frames])


def superframe(frames: list[bytes]) -> bytes:
    """Frames joined with a superframe index (VP9 bitstream spec, Annex B)."""
    if not 1 <= len(frames) <= 8:
        raise Vp9PayloadError(f"a superframe holds 1 to 8 frames, not {len(frames)}")
    largest = max(len(f) for f in frames)
    size_bytes = next(n for n in (1, 2, 3, 4) if largest < 1 << (8 * n))
    marker = bytes((0xC0 | (size_bytes - 1) << 3 | (len(frames) - 1),))
    sizes = b"".join(len(f).to_bytes(size_bytes, "little") for f in frames)
    return b"".join(frames) + marker + sizes + marker


def layer_frames(picture: bytes) -> list[bytes]:
    """The frames of a superframe ``depacketize`` made (one per spatial layer), or the
    picture itself. End-to-end encryption seals each layer frame on its own."""
    if not picture:
        return [picture]
    marker = picture[-1]
    if marker & 0xE0 != 0xC0:
        return [picture]
    size_bytes, count = (marker >> 3 & 3) + 1, (marker & 7) + 1
    index_length = 2 + size_bytes * count
    if len(picture) < index_length or picture[-index_length] != marker:
        return [picture]
    sizes = picture[-index_length + 1:-1]
    frames, position = [], 0
    for n in range(count):
        size = int.from_bytes(sizes[n * size_bytes:(n + 1) * size_bytes], "little")
        frames.append(picture[position:position + size])
        position += size
    if position != len(picture) - index_length:
        return [picture]
    return frames


def is_keyframe(picture: bytes) -> bool:
    """Whether the picture's first frame is a keyframe (frame_type 0, shown or not)."""
    if not picture or picture[0] >> 6 != 2:  # frame_marker
        return False
    profile = (picture[0] >> 5 & 1) | (picture[0] >> 3 & 2)
    bit = 3 if profile < 3 else 2  # profile 3 has a reserved bit before the next fields
    show_existing_frame = picture[0] >> bit & 1
    frame_type = picture[0] >> (bit - 1) & 1
    return not show_existing_frame and frame_type == 0


@dataclass(frozen=True)
class Vp9Keyframe:
    """What a keyframe's uncompressed header says about the stream (for ``vpcC``)."""

    profile: int
    bit_depth: int
    color_space: int  # VP9's own enumeration: 0 unknown ... 7 sRGB
    full_range: bool
    subsampling: tuple[int, int]  # (x, y): (1, 1) is 4:2:0
    width: int
    height: int


def keyframe_info(picture: bytes) -> Vp9Keyframe | None:
    """The stream's profile, colour format and size, from a keyframe; None otherwise."""
    if not is_keyframe(picture):
        return None
    bits = BitReader(picture[:HEADER_BYTES])
    try:
        bits.read(2)  # frame_marker
        profile = bits.read(1) | bits.read(1) << 1
        if profile == 3:
            bits.read(1)
        bits.read(4)  # show_existing_frame, frame_type, show_frame, error_resilient_mode
        if bits.read(24) != SYNC_CODE:
            return None
        bit_depth = (12 if bits.flag() else 10) if profile >= 2 else 8
        color_space = bits.read(3)
        if color_space != CS_RGB:
            full_range = bits.flag()
            subsampling = (1, 1)
            if profile in (1, 3):
                subsampling = (bits.read(1), bits.read(1))
                bits.read(1)
        else:
            full_range, subsampling = True, (0, 0)
            if profile in (1, 3):
                bits.read(1)
        width, height = bits.read(16) + 1, bits.read(16) + 1
    except BitsExhausted:
        return None
    return Vp9Keyframe(profile, bit_depth, color_space, full_range, subsampling, width, height)
