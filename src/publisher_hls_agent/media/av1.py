"""AV1 over RTP (the AOM "RTP Payload Format for AV1"): temporal units out of payloads,
and the sequence header's description of the stream. Pure.

A payload is an aggregation header (Z: the first element continues an OBU from the last
packet; Y: the last element goes on in the next one; W: how many elements, 0 when each
carries its length; N: the first packet of a coded video sequence, i.e. a keyframe with
its sequence header) followed by OBU elements. RTP drops the OBUs' size fields and the
temporal delimiters; ``depacketize`` puts the sizes back, which makes the "low overhead
bitstream format" that MP4 samples (AV1-ISOBMFF) and decoders take.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import Av1PayloadError, BitsExhausted
from .bits import BitReader, leb128, read_leb128

OBU_SEQUENCE_HEADER, OBU_TEMPORAL_DELIMITER, OBU_FRAME_HEADER = 1, 2, 3
OBU_TILE_LIST, OBU_FRAME, OBU_PADDING = 8, 6, 15
_DROPPED = frozenset({OBU_TEMPORAL_DELIMITER, OBU_TILE_LIST, OBU_PADDING})
KEY_FRAME = 0


def starts_frame(payload: bytes) -> bool:
    """Whether a payload's first element begins an OBU (Z=0). It may still be a later
    packet of a temporal unit: only a keyframe (N=1) proves a start, which is enough,
    since after a loss nothing but a keyframe is taken."""
    return bool(payload) and not payload[0] & 0x80


def is_keyframe_payload(payload: bytes) -> bool:
    """N=1: the first packet of a new coded video sequence."""
    return bool(payload) and bool(payload[0] & 0x08)


def _elements(payload: bytes) -> list[bytes]:
    count = payload[0] >> 4 & 0x03
    elements: list[bytes] = []
    offset = 1
    while offset < len(payload):
        if count and len(elements) == count - 1:
            elements.append(payload[offset:])
            break
        try:
            size, offset = read_leb128(payload, offset)
        except ValueError as exc:
            raise Av1PayloadError(str(exc)) from exc
        if offset + size > len(payload):
            raise Av1PayloadError("AV1 OBU element overruns its packet")
        elements.append(payload[offset:offset + size])
        offset += size
    return elements


def depacketize(payloads: Iterable[bytes]) -> bytes:
    """One temporal unit from the payloads of its packets, in sequence order: its OBUs,
    each with its size field, without temporal delimiters or padding."""
    obus: list[bytearray] = []
    continues = False  # the last element of the previous packet goes on
    for index, payload in enumerate(payloads):
        if not payload:
            raise Av1PayloadError("empty AV1 payload")
        first_continues = bool(payload[0] & 0x80)
        if first_continues != continues:
            raise Av1PayloadError("AV1 OBU fragments do not line up" if index
                                  else "AV1 temporal unit begins inside an OBU")
        for number, element in enumerate(_elements(payload)):
            if number == 0 and first_continues:
                obus[-1] += element
            else:
                obus.append(bytearray(element))
        continues = bool(payload[0] & 0x40)
    if continues:
        raise Av1PayloadError("AV1 temporal unit ends inside an OBU")
    return b"".join(_with_size(obu) for obu in obus if obu and _obu_type(obu) not in _DROPPED)


def _obu_type(obu: bytes | bytearray) -> int:
    return obu[0] >> 3 & 0x0F


def _with_size(obu: bytearray) -> bytes:
    header_size = 2 if obu[0] & 0x04 else 1  # with the extension byte (temporal, spatial id)
    header = obu[:header_size]
    if header[0] & 0x02:  # it already has its size field
        return bytes(obu)
    header[0] |= 0x02
    body = obu[header_size:]
    return bytes(header) + leb128(len(body)) + bytes(body)


def obus(unit: bytes) -> Iterable[tuple[int, bytes, bytes]]:
    """(type, the whole OBU, its payload) for each OBU of a unit made by ``depacketize``."""
    offset = 0
    while offset < len(unit):
        header = unit[offset]
        start = offset + (2 if header & 0x04 else 1)
        size, start = read_leb128(unit, start)
        if start + size > len(unit):
            raise Av1PayloadError(f"OBU at byte {offset} runs past its unit")
        yield header >> 3 & 0x0F, unit[offset:start + size], unit[start:start + size]
        offset = start + size


def sequence_header(unit: bytes) -> tuple[bytes, bytes] | None:
    """The unit's sequence header OBU, whole (header, size, payload) and its payload."""
    return next(((whole, payload) for kind, whole, payload in obus(unit)
                 if kind == OBU_SEQUENCE_HEADER), None)


def is_keyframe(unit: bytes) -> bool:
    """A sequence header, and a first frame that is a key frame: a unit that decodes on
    its own. (WebRTC never uses reduced still-picture headers, whose frames are all
    key frames; the sequence header says, and one that does is taken as a keyframe.)"""
    sequence = None
    for kind, _, payload in obus(unit):
        if kind == OBU_SEQUENCE_HEADER:
            sequence = payload
        elif kind in (OBU_FRAME, OBU_FRAME_HEADER):
            if not sequence or not payload:
                return False
            if sequence[0] & 0x08:  # reduced_still_picture_header
                return True
            show_existing_frame = payload[0] >> 7
            frame_type = payload[0] >> 5 & 0x03
            return not show_existing_frame and frame_type == KEY_FRAME
    return False


@dataclass(frozen=True)
class Av1Sequence:
    """What ``av1C`` (AV1-ISOBMFF 2.3) copies from the sequence header."""

    profile: int
    level: int  # seq_level_idx of operating point 0
    tier: int
    high_bitdepth: bool
    twelve_bit: bool
    monochrome: bool
    subsampling: tuple[int, int]
    chroma_sample_position: int
    width: int
    height: int


def parse_sequence_header(payload: bytes) -> Av1Sequence:
    """The fields of a sequence header OBU's payload that describe the stream (AV1 spec
    5.5); Av1PayloadError if it is cut short."""
    bits = BitReader(payload)
    try:
        profile = bits.read(3)
        bits.read(1)  # still_picture
        reduced = bits.flag()
        tier = 0
        decoder_model = initial_display_delay = False
        buffer_delay_length = 0
        if reduced:
            level = bits.read(5)
        else:
            if bits.flag():  # timing_info_present_flag
                bits.read(64)  # num_units_in_display_tick, time_scale
                if bits.flag():  # equal_picture_interval
                    bits.uvlc()
                decoder_model = bits.flag()
                if decoder_model:
                    buffer_delay_length = bits.read(5) + 1
                    bits.read(32 + 5 + 5)
            initial_display_delay = bits.flag()
            level = 0
            for point in range(bits.read(5) + 1):
                bits.read(12)  # operating_point_idc
                point_level = bits.read(5)
                point_tier = bits.read(1) if point_level > 7 else 0
                if point == 0:
                    level, tier = point_level, point_tier
                if decoder_model and bits.flag():
                    bits.read(2 * buffer_delay_length + 1)
                if initial_display_delay and bits.flag():
                    bits.read(4)
        width_bits, height_bits = bits.read(4) + 1, bits.read(4) + 1
        width, height = bits.read(width_bits) + 1, bits.read(height_bits) + 1
        order_hint = False
        if not reduced and bits.flag():  # frame_id_numbers_present_flag
            bits.read(7)
        bits.read(3)  # use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
        if not reduced:
            bits.read(4)  # interintra, masked compound, warped motion, dual filter
            order_hint = bits.flag()
            if order_hint:
                bits.read(2)  # enable_jnt_comp, enable_ref_frame_mvs
            force_screen_content_tools = 2 if bits.flag() else bits.read(1)
            if force_screen_content_tools and not bits.flag():  # seq_choose_integer_mv
                bits.read(1)
            if order_hint:
                bits.read(3)
        bits.read(3)  # enable_superres, enable_cdef, enable_restoration
        high_bitdepth = bits.flag()
        twelve_bit = profile == 2 and high_bitdepth and bits.flag()
        monochrome = profile != 1 and bits.flag()
        primaries, transfer, matrix = 2, 2, 2
        if bits.flag():  # color_description_present_flag
            primaries, transfer, matrix = bits.read(8), bits.read(8), bits.read(8)
        chroma_sample_position = 0
        if monochrome:
            subsampling = (1, 1)
        elif (primaries, transfer, matrix) == (1, 13, 0):  # sRGB
            subsampling = (0, 0)
        else:
            bits.read(1)  # color_range
            if profile == 0:
                subsampling = (1, 1)
            elif profile == 1:
                subsampling = (0, 0)
            elif twelve_bit:
                x = bits.read(1)
                subsampling = (x, bits.read(1) if x else 0)
            else:
                subsampling = (1, 0)
            if subsampling == (1, 1):
                chroma_sample_position = bits.read(2)
    except BitsExhausted as exc:
        raise Av1PayloadError(f"AV1 sequence header cut short: {exc}") from exc
    return Av1Sequence(profile, level, tier, high_bitdepth, twelve_bit, monochrome,
                       subsampling, chroma_sample_position, width, height)
