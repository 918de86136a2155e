"""Shift every timestamp of an MPEG-TS stream by one offset, streaming, in constant
memory. Pure.

PES headers carry PTS and DTS, adaptation fields carry PCR and OPCR; all are 33-bit
counters of a 90 kHz clock (PCR adds a 27 MHz extension, left as it is), so the shift
is done modulo 2^33 and a stream that crosses the wrap comes out continuous. Nothing
else changes: continuity counters, payloads, packet order and count are untouched.
The fields are found here, where they lie in the packet, and read with the decoders of
``inspection.tsparse``, the reader ``check`` uses.

Speed: only packets that start a PES or carry a PCR have anything to rewrite (a few
in a hundred), so numpy finds them across a whole chunk at once and Python touches
those alone. A chunk that loses sync (garbage, a truncated packet) is passed through
unchanged from where sync was lost to where it comes back, and reported with its
byte offset.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..hls.tsformat import PACKET_SIZE, SYNC, WRAP
from ..inspection.tsparse import read_pcr_base, read_timestamp

# PES stream ids without the optional header (program stream map, padding, private 2,
# ECM, EMM, directory, DSMCC, H.222.1 type E): no PTS/DTS to look for.
_NO_HEADER = {0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xFF, 0xF2, 0xF8}


def write_timestamp(data: bytearray, at: int, value: int) -> None:
    """Keep the 4-bit prefix and the marker bits; replace the 33 bits of value."""
    data[at] = (data[at] & 0xF0) | ((value >> 29) & 0x0E) | 0x01
    data[at + 1] = (value >> 22) & 0xFF
    data[at + 2] = ((value >> 14) & 0xFE) | 0x01
    data[at + 3] = (value >> 7) & 0xFF
    data[at + 4] = ((value << 1) & 0xFE) | 0x01


def write_pcr_base(data: bytearray, at: int, value: int) -> None:
    data[at] = (value >> 25) & 0xFF
    data[at + 1] = (value >> 17) & 0xFF
    data[at + 2] = (value >> 9) & 0xFF
    data[at + 3] = (value >> 1) & 0xFF
    data[at + 4] = ((value << 7) & 0x80) | (data[at + 4] & 0x7F)


def timestamp_fields(packet: bytes | bytearray, at: int) -> Iterator[tuple[str, int]]:
    """``(kind, byte offset)`` of each timestamp in the packet starting at ``at``:
    ``pcr``/``opcr`` (a 33-bit base) and ``pts``/``dts``."""
    flags = packet[at + 1]
    control = (packet[at + 3] >> 4) & 0x3
    payload = at + 4
    if control & 0x2:
        length = packet[at + 4]
        payload = at + 5 + length
        if length and payload <= at + PACKET_SIZE:
            af = packet[at + 5]
            position = at + 6
            if af & 0x10 and position + 6 <= payload:
                yield "pcr", position
                position += 6
            if af & 0x08 and position + 6 <= payload:
                yield "opcr", position
    if not (flags & 0x40 and control & 0x1):
        return  # no PES starts here
    end = at + PACKET_SIZE
    if payload + 14 > end or packet[payload:payload + 3] != b"\x00\x00\x01":
        return
    if packet[payload + 3] in _NO_HEADER or packet[payload + 6] & 0xC0 != 0x80:
        return
    pts_dts = packet[payload + 7] >> 6
    if pts_dts & 0x2:
        yield "pts", payload + 9
        if pts_dts == 0x3 and payload + 19 <= end:
            yield "dts", payload + 14


def _candidates(chunk: np.ndarray) -> np.ndarray:
    """Indexes of the packets that may hold a timestamp: a PES start, or an adaptation
    field with its PCR or OPCR flag."""
    pusi = (chunk[:, 1] & 0x40) != 0
    has_af = ((chunk[:, 3] & 0x20) != 0) & (chunk[:, 4] > 0)
    clocks = has_af & ((chunk[:, 5] & 0x18) != 0)
    return np.flatnonzero(pusi | clocks)


class TimestampShifter:
    """Feed bytes, get them back with every timestamp minus ``offset`` (mod 2^33)."""

    def __init__(self, offset: int) -> None:
        self.offset = offset % WRAP
        self.fed = 0  # bytes of input so far
        self.problems: list[str] = []
        self.rewritten = 0  # timestamps changed
        self._pending = b""  # the start of a packet whose end has not come yet

    def feed(self, data: bytes) -> bytes:
        base = self.fed - len(self._pending)  # where ``buffer`` starts in the input
        buffer = bytearray(self._pending + data) if self._pending else bytearray(data)
        self.fed += len(data)
        out = bytearray()
        start = 0
        while len(buffer) - start >= PACKET_SIZE:
            if buffer[start] != SYNC:
                resync = self._resync(buffer, start, base)
                if resync is None:
                    break  # more bytes are needed to tell where sync comes back
                out += buffer[start:resync]
                start = resync
                continue
            run = _aligned_run(buffer, start)
            self._rewrite(buffer, start, run)
            out += buffer[start:start + run * PACKET_SIZE]
            start += run * PACKET_SIZE
        self._pending = bytes(buffer[start:])
        return bytes(out)

    def finish(self) -> bytes:
        """The bytes left over (a truncated last packet), passed through."""
        rest, self._pending = self._pending, b""
        if rest:
            self.problems.append(f"truncated packet at byte {self.fed - len(rest)} "
                                 f"({len(rest)} of {PACKET_SIZE} bytes), passed through "
                                 "unchanged")
        return rest

    def _rewrite(self, buffer: bytearray, start: int, run: int) -> None:
        view = np.frombuffer(buffer, dtype=np.uint8, count=run * PACKET_SIZE,
                             offset=start).reshape(run, PACKET_SIZE)
        for index in _candidates(view).tolist():
            at = start + index * PACKET_SIZE
            for kind, field in timestamp_fields(buffer, at):
                if kind in ("pcr", "opcr"):
                    value = read_pcr_base(buffer, field)
                    write_pcr_base(buffer, field, (value - self.offset) % WRAP)
                else:
                    value = read_timestamp(buffer, field)
                    write_timestamp(buffer, field, (value - self.offset) % WRAP)
                self.rewritten += 1

    def _resync(self, buffer: bytearray, start: int, base: int) -> int | None:
        """Where sync comes back after ``start`` (two sync bytes a packet apart), or
        None when the buffer cannot tell yet."""
        search = start + 1
        while (found := buffer.find(SYNC, search)) >= 0 and found + PACKET_SIZE < len(buffer):
            if buffer[found + PACKET_SIZE] == SYNC:
                self._garbage(base + start, found - start)
                return found
            search = found + 1
        if len(buffer) - start > 4 * PACKET_SIZE:  # long garbage: most of it goes now
            end = len(buffer) - PACKET_SIZE
            self._garbage(base + start, end - start)
            return end
        return None

    def _garbage(self, offset: int, length: int) -> None:
        self.problems.append(f"no sync byte at byte {offset}: {length} bytes passed "
                             "through unchanged")


def _aligned_run(buffer: bytearray, start: int) -> int:
    """How many whole packets from ``start`` have their sync byte."""
    count = (len(buffer) - start) // PACKET_SIZE
    syncs = np.frombuffer(buffer, dtype=np.uint8, count=count * PACKET_SIZE,
                          offset=start)[::PACKET_SIZE]
    lost = np.flatnonzero(syncs != SYNC)
    return int(lost[0]) if lost.size else count


def first_timestamp(data: bytes) -> int | None:
    """The earliest timestamp (PTS, DTS or PCR base) in ``data``, taking the 33-bit
    wrap into account: the one that all others follow by less than half the range."""
    first: int | None = None
    least = 0
    start = 0
    while start + PACKET_SIZE <= len(data):
        if data[start] != SYNC:
            start += 1
            continue
        run = _aligned_run(bytearray(data[start:start + 4096 * PACKET_SIZE]), 0)
        view = np.frombuffer(data, dtype=np.uint8, count=run * PACKET_SIZE,
                             offset=start).reshape(run, PACKET_SIZE)
        for index in _candidates(view).tolist():
            at = start + index * PACKET_SIZE
            for kind, field in timestamp_fields(data, at):
                value = (read_pcr_base(data, field) if kind in ("pcr", "opcr")
                         else read_timestamp(data, field))
                if first is None:
                    first = value
                delta = (value - first + WRAP // 2) % WRAP - WRAP // 2
                least = min(least, delta)
        start += max(run, 1) * PACKET_SIZE
    return None if first is None else (first + least) % WRAP
