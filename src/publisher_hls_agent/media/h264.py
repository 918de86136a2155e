"""H.264 NAL units: RTP payload parsing (RFC 6184) and Annex B framing.

Only the NAL unit *headers* are read (and an SPS's picture size, a slice's frame
number), never the slice data: passthrough means the payload bytes that arrive are the
bytes that get recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import BitsExhausted, H264PayloadError
from .bits import BitReader

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
STAP_A = 24
FU_A = 28

START_CODE = b"\x00\x00\x00\x01"


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F


def parse_payload(payload: bytes) -> tuple[list[bytes], bool, bool]:
    """Split one RTP payload into NAL units.

    Returns ``(nals, starts_nal, ends_nal)``. A single NAL unit or a STAP-A gives whole
    NAL units (both flags true). An FU-A fragment gives one *piece* of a NAL unit: the
    first piece carries the reconstructed NAL header, and the flags say whether this
    piece starts and/or ends its NAL unit, so the caller can join the pieces.
    """
    if not payload:
        raise H264PayloadError("empty H.264 payload")
    header = payload[0]
    if header & 0x80:
        raise H264PayloadError("forbidden_zero_bit set in NAL header")
    kind = header & 0x1F
    if 1 <= kind <= 23:
        return [payload], True, True
    if kind == STAP_A:
        return _parse_stap_a(payload), True, True
    if kind == FU_A:
        return _parse_fu_a(payload)
    raise H264PayloadError(f"unsupported H.264 packetization type {kind}")


def _parse_stap_a(payload: bytes) -> list[bytes]:
    nals = []
    offset = 1
    end = len(payload)
    while offset < end:
        if offset + 2 > end:
            raise H264PayloadError(f"STAP-A truncated: size field at byte {offset} is cut off")
        size = (payload[offset] << 8) | payload[offset + 1]
        offset += 2
        if size == 0:
            raise H264PayloadError(f"STAP-A NAL unit of size 0 at byte {offset - 2}")
        if offset + size > end:
            raise H264PayloadError(
                f"STAP-A truncated: NAL unit of {size} bytes at byte {offset}, "
                f"only {end - offset} left"
            )
        nals.append(payload[offset : offset + size])
        offset += size
    if not nals:
        raise H264PayloadError("STAP-A without NAL units")
    return nals


def _parse_fu_a(payload: bytes) -> tuple[list[bytes], bool, bool]:
    if len(payload) < 3:
        raise H264PayloadError(f"FU-A truncated: {len(payload)} bytes, need at least 3")
    indicator, fu_header = payload[0], payload[1]
    start = bool(fu_header & 0x80)
    end = bool(fu_header & 0x40)
    if start and end:
        raise H264PayloadError("FU-A with both start and end bits set")
    if start:
        reconstructed = bytes(((indicator & 0xE0) | (fu_header & 0x1F),))
        return [reconstructed + payload[2:]], True, end
    return [payload[2:]], False, end


def to_annexb(nals: Iterable[bytes]) -> bytes:
    """Join NAL units with 4-byte start codes (what MPEG-TS and players expect)."""
    return b"".join(START_CODE + nal for nal in nals)


def split_annexb(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream into NAL units (3- or 4-byte start codes)."""
    nals = []
    start = _next_start(data, 0)
    if start < 0:
        return [data] if data else []
    while start >= 0:
        begin = start + 3
        following = _next_start(data, begin)
        end = len(data) if following < 0 else following
        # A 4-byte start code is a zero byte followed by a 3-byte one: trim it.
        nal = data[begin:end]
        if following >= 0 and nal.endswith(b"\x00"):
            nal = nal.rstrip(b"\x00")
        if nal:
            nals.append(nal)
        start = following
    return nals


def _next_start(data: bytes, offset: int) -> int:
    return data.find(b"\x00\x00\x01", offset)


def describe_access_unit(nals: Iterable[bytes]) -> tuple[bool, bool, bool]:
    """``(has_idr, has_sps, has_pps)`` of an access unit's NAL units."""
    has_idr = has_sps = has_pps = False
    for nal in nals:
        kind = nal[0] & 0x1F
        if kind == NAL_IDR:
            has_idr = True
        elif kind == NAL_SPS:
            has_sps = True
        elif kind == NAL_PPS:
            has_pps = True
    return has_idr, has_sps, has_pps


def parameter_sets(nals: Iterable[bytes]) -> tuple[bytes, bytes] | None:
    """The (SPS, PPS) an access unit carries, if it carries both."""
    sps = pps = None
    for nal in nals:
        kind = nal[0] & 0x1F
        if kind == NAL_SPS and sps is None:
            sps = nal
        elif kind == NAL_PPS and pps is None:
            pps = nal
    return (sps, pps) if sps is not None and pps is not None else None


def _leading_nal(payload: bytes) -> tuple[int, int] | None:
    """The type of the NAL unit an RTP payload begins, and the byte after its header
    (a slice's starts with ``first_mb_in_slice``); None when the payload only continues
    one (an FU-A's middle or end) or is too short to say."""
    if len(payload) < 2:
        return None
    kind = payload[0] & 0x1F
    if kind == STAP_A:
        return _leading_nal(payload[3:]) if len(payload) > 3 else None
    if kind == FU_A:
        if len(payload) < 3 or not payload[1] & 0x80:
            return None
        return payload[1] & 0x1F, payload[2]
    return kind, payload[1]


def starts_access_unit(payload: bytes) -> bool:
    """Whether an RTP payload is provably the first packet of an access unit.

    True for parameter sets, AUD and SEI (they precede the slices of their picture) and
    for the first slice of a picture (``first_mb_in_slice == 0``, whose ue(v) code is a
    single 1 bit). Used to resynchronise after packet loss without waiting for a marker.
    """
    leading = _leading_nal(payload)
    if leading is None:
        return False
    kind, after_header = leading
    if kind in (NAL_SPS, NAL_PPS, NAL_AUD, NAL_SEI):
        return True
    return kind in (NAL_SLICE, NAL_IDR) and bool(after_header & 0x80)


def starts_keyframe(payload: bytes) -> bool:
    """Whether an RTP payload provably begins an IDR access unit: it starts with an SPS
    (as libwebrtc sends every IDR) or is the first slice of an IDR picture."""
    leading = _leading_nal(payload)
    if leading is None:
        return False
    kind, after_header = leading
    return kind == NAL_SPS or (kind == NAL_IDR and bool(after_header & 0x80))


def depacketize(payloads: Iterable[bytes]) -> list[bytes]:
    """Rebuild the NAL units of one access unit from its RTP payloads, in order.

    Raises ``H264PayloadError`` for malformed payloads and for FU-A fragments that do
    not join up (a piece missing at the start, the middle or the end).
    """
    nals: list[bytes] = []
    fragments: list[bytes] | None = None
    for payload in payloads:
        pieces, starts, ends = parse_payload(payload)
        if starts and ends:
            if fragments is not None:
                raise H264PayloadError("FU-A fragment not terminated before the next NAL unit")
            nals.extend(pieces)
        elif starts:
            if fragments is not None:
                raise H264PayloadError("FU-A start inside another fragmented NAL unit")
            fragments = pieces
        else:
            if fragments is None:
                raise H264PayloadError("FU-A continuation without its start fragment")
            fragments.extend(pieces)
            if ends:
                nals.append(b"".join(fragments))
                fragments = None
    if fragments is not None:
        raise H264PayloadError("access unit ends inside a fragmented NAL unit")
    return nals


# Profiles whose SPS carries the chroma format, bit depths and scaling matrices (H.264
# 7.3.2.1.1).
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


@dataclass(frozen=True)
class SpsInfo:
    size: tuple[int, int] | None  # width, height, cropping applied
    frame_num_bits: int  # log2_max_frame_num: the width of a slice's frame_num
    frame_num_gaps_allowed: bool
    separate_colour_planes: bool  # a colour_plane_id precedes frame_num in slices


def sps_size(sps: bytes) -> tuple[int, int] | None:
    """The picture width and height an SPS NAL unit declares, cropping applied; None for
    one too damaged to say. Read once per keyframe, never per packet."""
    info = sps_info(sps)
    return info.size if info is not None else None


def sps_info(sps: bytes) -> SpsInfo | None:
    """What the recorder reads of an SPS NAL unit; None for one too damaged to say."""
    bits = BitReader(unescape(sps[1:]))
    separate_planes = False
    try:
        profile = bits.read(8)
        bits.read(16)  # constraint flags, level
        bits.ue()  # seq_parameter_set_id
        chroma_format = 1
        if profile in _HIGH_PROFILES:
            chroma_format = bits.ue()
            if chroma_format == 3:
                separate_planes = bits.flag()
            bits.ue()  # bit_depth_luma_minus8
            bits.ue()  # bit_depth_chroma_minus8
            bits.read(1)  # qpprime_y_zero_transform_bypass_flag
            if bits.flag():  # seq_scaling_matrix_present_flag
                for index in range(8 if chroma_format != 3 else 12):
                    if bits.flag():
                        _skip_scaling_list(bits, 16 if index < 6 else 64)
        frame_num_bits = bits.ue() + 4
        order_type = bits.ue()
        if order_type == 0:
            bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
        elif order_type == 1:
            bits.read(1)
            bits.se()
            bits.se()
            for _ in range(bits.ue()):
                bits.se()
        bits.ue()  # max_num_ref_frames
        gaps_allowed = bits.flag()
        width_mbs, height_units = bits.ue() + 1, bits.ue() + 1
        frame_mbs_only = bits.flag()
        if not frame_mbs_only:
            bits.read(1)  # mb_adaptive_frame_field_flag
        bits.read(1)  # direct_8x8_inference_flag
        crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue()) if bits.flag() else (0, 0, 0, 0)
    except BitsExhausted:
        return None
    if frame_num_bits > 16:
        return None
    # Cropping counts in chroma samples (4:2:0: two luma ones), doubled again for fields.
    crop_x = 2 if chroma_format in (1, 2) else 1
    crop_y = (2 if chroma_format == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - crop_y * (crop[2] + crop[3])
    size = (width, height) if width > 0 and height > 0 else None
    return SpsInfo(size, frame_num_bits, gaps_allowed, separate_planes)


def slice_frame_num(nal: bytes, sps: SpsInfo) -> int | None:
    """A slice NAL unit's frame_num (H.264 7.3.3); None for one too short to say."""
    bits = BitReader(unescape(nal[1:16]))
    try:
        bits.ue()  # first_mb_in_slice
        bits.ue()  # slice_type
        bits.ue()  # pic_parameter_set_id
        if sps.separate_colour_planes:
            bits.read(2)  # colour_plane_id
        return bits.read(sps.frame_num_bits)
    except BitsExhausted:
        return None


def _skip_scaling_list(bits: BitReader, size: int) -> None:
    last = following = 8
    for _ in range(size):
        if following:
            following = (last + bits.se() + 256) % 256
        last = following or last


def unescape(rbsp: bytes) -> bytes:
    """The NAL unit's payload without its emulation prevention bytes (00 00 03)."""
    return rbsp.replace(b"\x00\x00\x03", b"\x00\x00") if b"\x00\x00\x03" in rbsp else rbsp
