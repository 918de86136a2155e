"""Each video codec's part of fMP4: its sample entry (from the first keyframe) and its
samples. Pure.

- H.264 (``avc3``): NAL units re-framed with 4-byte lengths instead of start codes and
  nothing else changed; SPS/PPS stay in-band too, which is what ``avc3`` allows.
- VP9 (``vp09``, VP Codec ISO Media File Format): a sample is a frame or a superframe,
  as depacketized; ``vpcC`` says profile, level, bit depth and colour format.
- AV1 (``av01``, AV1-ISOBMFF): a sample is a temporal unit of sized OBUs without
  temporal delimiters, as depacketized; ``av1C`` copies the sequence header.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..errors import NoVideoConfig
from ..media import av1, h264, vp9
from .fmp4 import VideoConfig, box, full_box, visual_sample_entry

# VP9 levels (VP9 spec, Annex A): (level, max luma picture size, max luma samples/s).
_VP9_LEVELS = (
    (10, 36864, 829440), (11, 73728, 2764800), (20, 122880, 4608000),
    (21, 245760, 9216000), (30, 552960, 20736000), (31, 983040, 36864000),
    (40, 2228224, 83558400), (41, 2228224, 160432128), (50, 8912896, 311951360),
    (51, 8912896, 588251136), (52, 8912896, 1176502272), (60, 35651584, 1176502272),
    (61, 35651584, 2353004544), (62, 35651584, 4706009088),
)
NOMINAL_FPS = 30  # the level is an upper bound for players; WebRTC rarely exceeds 30
# VP9 signals only the matrix (its color_space); ISO/IEC 23091-4 code points for it.
_VP9_MATRIX = {1: 5, 2: 1, 3: 6, 4: 7, 5: 9, 7: 0}
UNSPECIFIED = 2


def video_config(codec: str, keyframe: bytes, size: tuple[int, int] | None) -> VideoConfig:
    """The sample entry for a recording whose first keyframe is ``keyframe``. ``size``
    is the published picture size, when the room says; else the keyframe's."""
    entry = SAMPLE_ENTRIES.get(codec)
    if entry is None:
        raise NoVideoConfig(f"no fMP4 sample entry for {codec}")
    return entry(keyframe, size)


def _avc3(keyframe: bytes, size: tuple[int, int] | None) -> VideoConfig:
    nals = h264.split_annexb(keyframe)
    sps = next((n for n in nals if h264.nal_type(n) == h264.NAL_SPS), None)
    pps = next((n for n in nals if h264.nal_type(n) == h264.NAL_PPS), None)
    if sps is None or pps is None:
        raise NoVideoConfig("H.264 keyframe without SPS and PPS")
    width, height = size or (0, 0)
    avcc = box(b"avcC", bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE1)),
               struct.pack("!H", len(sps)), sps, bytes((1,)), struct.pack("!H", len(pps)), pps)
    return VideoConfig(width, height, visual_sample_entry(b"avc3", width, height, avcc))


def _vp09(keyframe: bytes, size: tuple[int, int] | None) -> VideoConfig:
    info = vp9.keyframe_info(keyframe)
    if info is None:
        raise NoVideoConfig("not a VP9 keyframe")
    width, height = size or (info.width, info.height)
    chroma = {(1, 1): 1, (1, 0): 2, (0, 0): 3}.get(info.subsampling, 1)
    vpcc = full_box(b"vpcC", 1, 0, struct.pack(
        "!BBBBBBH", info.profile, vp9_level(width, height),
        info.bit_depth << 4 | chroma << 1 | int(info.full_range),
        UNSPECIFIED, UNSPECIFIED, _VP9_MATRIX.get(info.color_space, UNSPECIFIED), 0))
    return VideoConfig(width, height, visual_sample_entry(b"vp09", width, height, vpcc))


def _av01(keyframe: bytes, size: tuple[int, int] | None) -> VideoConfig:
    found = av1.sequence_header(keyframe)
    if found is None:
        raise NoVideoConfig("AV1 keyframe without a sequence header")
    obu, payload = found
    seq = av1.parse_sequence_header(payload)
    width, height = size or (seq.width, seq.height)
    av1c = box(b"av1C", bytes((
        0x81,  # marker, version 1
        seq.profile << 5 | seq.level,
        seq.tier << 7 | seq.high_bitdepth << 6 | seq.twelve_bit << 5
        | seq.monochrome << 4 | seq.subsampling[0] << 3 | seq.subsampling[1] << 2
        | seq.chroma_sample_position,
        0,  # no initial presentation delay
    )), obu)
    return VideoConfig(width, height, visual_sample_entry(b"av01", width, height, av1c))


# By codec name (``media/codecs.py``): every codec that passes through into fMP4 has one.
SAMPLE_ENTRIES: dict[str, Callable[[bytes, tuple[int, int] | None], VideoConfig]] = {
    "h264": _avc3, "vp9": _vp09, "av1": _av01}


def vp9_level(width: int, height: int) -> int:
    picture = width * height
    return next((level for level, max_picture, max_rate in _VP9_LEVELS
                 if picture <= max_picture and picture * NOMINAL_FPS <= max_rate), 62)


def video_sample(codec: str, data: bytes) -> bytes:
    """A picture as the recorder holds it, in MP4 form."""
    if codec == "h264":
        return b"".join(struct.pack("!I", len(nal)) + nal for nal in h264.split_annexb(data))
    return data
