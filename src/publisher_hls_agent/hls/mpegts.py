"""A minimal MPEG-TS muxer (ISO/IEC 13818-1) for HLS segments: H.264 and AAC.

Written here rather than borrowed from FFmpeg because HLS wants exact control that
FFmpeg's muxer does not expose through PyAV: PAT and PMT at the first byte of every
segment, continuity counters that carry on across segments, timestamps written exactly
as given (no mux delay, no shifting), and no interleaving buffer between the caller's
packet and the bytes that come out.

Pure: bytes in, bytes out. The caller decides where a segment starts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .tsformat import PACKET_SIZE, SYNC, WRAP

PAYLOAD_SIZE = PACKET_SIZE - 4
PMT_PID = 0x1000
VIDEO_PID = 0x100
AUDIO_PID = 0x101
STREAM_TYPE_H264 = 0x1B
STREAM_TYPE_AAC_ADTS = 0x0F
# By codec name (``media/codecs.py``): every codec that passes through into MPEG-TS.
VIDEO_STREAM_TYPES = {"h264": STREAM_TYPE_H264}


def _crc32_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc32_table()


def crc32_mpeg2(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc


@dataclass(frozen=True)
class Streams:
    video: bool
    audio: bool

    def __post_init__(self) -> None:
        if not (self.video or self.audio):
            raise ValueError("an MPEG-TS program needs at least one stream")

    @property
    def pcr_pid(self) -> int:
        return VIDEO_PID if self.video else AUDIO_PID


def _section(table_id: int, extension: int, body: bytes, version: int = 0) -> bytes:
    """A PSI section with its header and CRC, as the payload of one TS packet."""
    length = 5 + len(body) + 4  # header after length field + body + CRC
    current = 0xC1 | (version & 0x1F) << 1  # reserved bits, version, current_next_indicator
    header = struct.pack("!BHHBBB", table_id, 0xB000 | length, extension, current, 0, 0)
    section = header + body
    return b"\x00" + section + struct.pack("!I", crc32_mpeg2(section))  # pointer_field 0


def pat_section() -> bytes:
    return _section(0x00, 1, struct.pack("!HH", 1, 0xE000 | PMT_PID))


def pmt_section(streams: Streams, version: int = 0) -> bytes:
    body = struct.pack("!HH", 0xE000 | streams.pcr_pid, 0xF000)
    if streams.video:
        body += struct.pack("!BHH", STREAM_TYPE_H264, 0xE000 | VIDEO_PID, 0xF000)
    if streams.audio:
        body += struct.pack("!BHH", STREAM_TYPE_AAC_ADTS, 0xE000 | AUDIO_PID, 0xF000)
    return _section(0x02, 1, body, version)


def _timestamp(prefix: int, ts: int) -> bytes:
    ts %= WRAP
    return bytes((
        (prefix << 4) | (((ts >> 30) & 0x07) << 1) | 1,
        (ts >> 22) & 0xFF,
        (((ts >> 15) & 0x7F) << 1) | 1,
        (ts >> 7) & 0xFF,
        ((ts & 0x7F) << 1) | 1,
    ))


def pes_header(stream_id: int, pts: int, dts: int | None, payload_length: int) -> bytes:
    """PES header with PTS (and DTS when it differs). Video PES are unbounded (length 0)."""
    if dts is None or dts == pts:
        fields = _timestamp(0x2, pts)
        flags = 0x80
    else:
        fields = _timestamp(0x3, pts) + _timestamp(0x1, dts)
        flags = 0xC0
    length = 3 + len(fields) + payload_length
    packet_length = 0 if stream_id >= 0xE0 or length > 0xFFFF else length
    return struct.pack("!3sBHBBB", b"\x00\x00\x01", stream_id, packet_length, 0x80, flags,
                       len(fields)) + fields


def _pcr_field(pcr_90k: int) -> bytes:
    base = pcr_90k % WRAP
    return struct.pack("!IH", base >> 1, ((base & 1) << 15) | 0x7E00)


class TsMuxer:
    """Turns access units into TS packets; keeps continuity counters across segments."""

    def __init__(self, streams: Streams) -> None:
        self.streams = streams
        self._pmt_version = 0
        self._cc: dict[int, int] = {0: 0, PMT_PID: 0, VIDEO_PID: 0, AUDIO_PID: 0}

    def announce(self, streams: Streams) -> None:
        """A new program from the next ``tables()`` on, as a new PMT version (a reader
        of the whole file, FFmpeg's included, ignores a PMT whose version it has seen)."""
        self.streams = streams
        self._pmt_version = (self._pmt_version + 1) & 0x1F

    def tables(self) -> bytes:
        """PAT then PMT: what each segment starts with."""
        return (self._packets(0, pat_section(), start=True)
                + self._packets(PMT_PID, pmt_section(self.streams, self._pmt_version),
                                start=True))

    def video(self, annexb: bytes, pts: int, dts: int, keyframe: bool) -> bytes:
        """One H.264 access unit (Annex B, AUD not required) as TS packets."""
        header = pes_header(0xE0, pts, dts, len(annexb))
        return self._packets(VIDEO_PID, header + annexb, start=True, random_access=keyframe,
                             pcr=dts if self.streams.pcr_pid == VIDEO_PID else None)

    def audio(self, adts_frames: bytes, pts: int) -> bytes:
        """One or more ADTS AAC frames starting at ``pts``, as TS packets."""
        header = pes_header(0xC0, pts, None, len(adts_frames))
        return self._packets(AUDIO_PID, header + adts_frames, start=True, random_access=True,
                             pcr=pts if self.streams.pcr_pid == AUDIO_PID else None)

    def _packets(self, pid: int, data: bytes, *, start: bool, random_access: bool = False,
                 pcr: int | None = None) -> bytes:
        out = bytearray()
        cc = self._cc[pid]
        offset, total = 0, len(data)
        first = True
        while offset < total:
            adaptation = b""
            if first and (pcr is not None or random_access):
                flags = (0x40 if random_access else 0) | (0x10 if pcr is not None else 0)
                adaptation = bytes((flags,)) + (_pcr_field(pcr) if pcr is not None else b"")
            room = PAYLOAD_SIZE - (1 + len(adaptation) if adaptation else 0)
            chunk = data[offset:offset + room]
            stuffing = room - len(chunk)
            if stuffing:
                # Pad with an adaptation field (or grow the one there) to fill the packet.
                if not adaptation:
                    stuffing -= 1  # the adaptation_field_length byte itself
                    adaptation = (b"\x00" + b"\xFF" * (stuffing - 1)) if stuffing else b""
                else:
                    adaptation += b"\xFF" * stuffing
                control = 0x30
                field = bytes((len(adaptation),)) + adaptation
            elif adaptation:
                control = 0x30
                field = bytes((len(adaptation),)) + adaptation
            else:
                control = 0x10
                field = b""
            pusi = 0x40 if first and start else 0
            out += struct.pack("!BHB", SYNC, pusi << 8 | pid, control | cc)
            out += field
            out += chunk
            cc = (cc + 1) & 0x0F
            offset += len(chunk)
            first = False
        self._cc[pid] = cc
        return bytes(out)
