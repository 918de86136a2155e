"""Reading MPEG-TS: packets, PAT/PMT and PES units with their timestamps. Pure.

Strict about structure (sync bytes, lengths) and forgiving about content: what cannot
be parsed is reported with its byte offset, never raised past the caller. The 33-bit
timestamp fields are decoded here for every reader, ``fix``'s streaming rewriter too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import TsError
from ..hls.tsformat import PACKET_SIZE, SYNC

MIN_SECTION = 16  # 8 bytes of table header, the 4 of a PAT entry or PMT header, a CRC


@dataclass(frozen=True, slots=True)
class Pes:
    pid: int
    stream_type: int | None
    pts: int | None
    dts: int | None
    data: bytes  # the elementary stream bytes
    offset: int  # byte offset of its first TS packet
    random_access: bool


@dataclass
class Program:
    pmt_pid: int | None = None
    streams: dict[int, int] = field(default_factory=dict)  # pid -> stream_type
    tables_first: bool = False  # PAT then PMT before any elementary stream packet


def read_timestamp(data: bytes | bytearray, at: int) -> int:
    """The 33-bit PTS or DTS of the 5-byte field at ``at`` (marker bits skipped)."""
    return (((data[at] >> 1) & 0x07) << 30) | (data[at + 1] << 22) | (
        (data[at + 2] >> 1) << 15) | (data[at + 3] << 7) | (data[at + 4] >> 1)


def read_pcr_base(data: bytes | bytearray, at: int) -> int:
    """The 33-bit base of the PCR or OPCR at ``at`` (its 27 MHz extension left out)."""
    return (data[at] << 25) | (data[at + 1] << 17) | (data[at + 2] << 9) | (
        data[at + 3] << 1) | (data[at + 4] >> 7)


def packets(data: bytes) -> Iterator[tuple[int, bytes]]:
    """``(offset, packet)`` for each whole packet; TsError on lost sync."""
    if len(data) % PACKET_SIZE:
        raise TsError(f"length {len(data)} is not a multiple of {PACKET_SIZE} bytes "
                      f"(last packet truncated at byte {len(data) - len(data) % PACKET_SIZE})")
    for offset in range(0, len(data), PACKET_SIZE):
        if data[offset] != SYNC:
            raise TsError(f"no sync byte at byte {offset}")
        yield offset, data[offset:offset + PACKET_SIZE]


def _payload(packet: bytes, offset: int) -> tuple[bytes, bool]:
    control = (packet[3] >> 4) & 0x3
    start = 4
    random_access = False
    if control & 0x2:
        length = packet[4]
        if 5 + length > PACKET_SIZE:
            raise TsError(f"adaptation field longer than the packet at byte {offset}")
        if length:
            random_access = bool(packet[5] & 0x40)
        start = 5 + length
    return (packet[start:] if control & 0x1 else b""), random_access


def _section(payload: bytes, offset: int) -> bytes:
    pointer = payload[0]
    section = payload[1 + pointer:]
    if len(section) < 3:
        raise TsError(f"PSI section truncated at byte {offset}")
    length = ((section[1] & 0x0F) << 8) | section[2]
    section = section[:3 + length]
    if len(section) < MIN_SECTION:  # table header and CRC: nothing shorter is a PAT/PMT
        raise TsError(f"PSI section of {len(section)} bytes at byte {offset}")
    return section


def _parse_pmt(section: bytes, program: Program) -> None:
    info_length = ((section[10] & 0x0F) << 8) | section[11]
    position = 12 + info_length
    end = len(section) - 4
    while position + 5 <= end:
        stream_type = section[position]
        pid = ((section[position + 1] & 0x1F) << 8) | section[position + 2]
        es_info = ((section[position + 3] & 0x0F) << 8) | section[position + 4]
        program.streams[pid] = stream_type
        position += 5 + es_info


def _pes(pid: int, program: Program, chunks: list[bytes], offset: int,
         random_access: bool) -> Pes:
    data = b"".join(chunks)
    if len(data) < 9 or data[:3] != b"\x00\x00\x01":
        raise TsError(f"PES without a start code at byte {offset}")
    flags = data[7]
    header_length = data[8]
    pts = dts = None
    timestamps = 10 if flags & 0x40 else 5 if flags & 0x80 else 0
    if 9 + max(header_length, timestamps) > len(data) or header_length < timestamps:
        raise TsError(f"PES header runs past its data at byte {offset}")
    if flags & 0x80:
        pts = read_timestamp(data, 9)
    if flags & 0x40:
        dts = read_timestamp(data, 14)
    return Pes(pid, program.streams.get(pid), pts, dts, data[9 + header_length:], offset,
               random_access)


def read_pes(data: bytes, program: Program | None = None) -> Iterator[Pes]:
    """Every PES unit of a TS byte string, in order of their first packet."""
    program = program if program is not None else Program()
    pending: dict[int, tuple[int, bool, list[bytes]]] = {}
    seen_elementary = False
    for offset, packet in packets(data):
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        unit_start = bool(packet[1] & 0x40)
        payload, random_access = _payload(packet, offset)
        if pid == 0:
            if unit_start and payload:
                section = _section(payload, offset)
                program.pmt_pid = ((section[10] & 0x1F) << 8) | section[11]
            continue
        if pid == program.pmt_pid:
            if unit_start and payload:
                _parse_pmt(_section(payload, offset), program)
                if not seen_elementary:
                    program.tables_first = True
            continue
        if pid not in program.streams:
            continue
        seen_elementary = True
        if unit_start:
            if pid in pending:
                start, access, chunks = pending.pop(pid)
                yield _pes(pid, program, chunks, start, access)
            pending[pid] = (offset, random_access, [payload])
        elif pid in pending:
            pending[pid][2].append(payload)
    for pid, (start, access, chunks) in pending.items():
        yield _pes(pid, program, chunks, start, access)
