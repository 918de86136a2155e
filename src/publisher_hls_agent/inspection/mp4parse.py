"""Reading fragmented MP4 for ``check``: the init segment's tracks, each fragment's
timing and its first video sample. Pure; only the boxes HLS fMP4 uses."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import Mp4Error

# Samples in one fragment: a 10 s segment at 120 fps is 1,200; a count in the millions
# is a corrupt or hostile file, which would otherwise be walked a sample at a time.
MAX_SAMPLES = 1 << 20


def boxes(data: bytes, start: int = 0,
          end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """``(type, body start, box end)`` of each box between ``start`` and ``end``."""
    end = len(data) if end is None else end
    position = start
    while position < end:
        if position + 8 > end:
            raise Mp4Error(f"box header truncated at byte {position}")
        size, kind = struct.unpack_from("!I4s", data, position)
        header = 8
        if size == 1:
            size = struct.unpack_from("!Q", data, position + 8)[0]
            header = 16
        if size < header or position + size > end:
            raise Mp4Error(f"box {kind!r} at byte {position} has a bad size {size}")
        yield kind, position + header, position + size
        position += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int]:
    for found, body, stop in boxes(data, start, end):
        if found == kind:
            return body, stop
    raise Mp4Error(f"no {kind.decode()} box at bytes {start}-{end}")


@dataclass(frozen=True)
class Track:
    track_id: int
    handler: str  # "vide" | "soun"
    timescale: int
    codec: str  # sample entry type: avc1, avc3, Opus, mp4a


def read_init(data: bytes) -> dict[int, Track]:
    """The tracks of an init segment; Mp4Error for anything broken in it."""
    try:
        return _read_init(data)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:  # a field past its box
        raise Mp4Error(f"broken init segment ({exc})") from None


def _read_init(data: bytes) -> dict[int, Track]:
    moov = _child(data, 0, len(data), b"moov")
    tracks = {}
    for kind, body, end in boxes(data, *moov):
        if kind != b"trak":
            continue
        tkhd = _child(data, body, end, b"tkhd")
        track_id = struct.unpack_from("!I", data,
                                      tkhd[0] + (20 if data[tkhd[0]] == 1 else 12))[0]
        mdia = _child(data, body, end, b"mdia")
        mdhd = _child(data, *mdia, b"mdhd")
        timescale = struct.unpack_from("!I", data,
                                       mdhd[0] + (20 if data[mdhd[0]] == 1 else 12))[0]
        if timescale == 0:
            raise Mp4Error(f"mdhd at byte {mdhd[0]} has a timescale of 0")
        hdlr = _child(data, *mdia, b"hdlr")
        handler = data[hdlr[0] + 8:hdlr[0] + 12].decode("latin-1")
        minf = _child(data, *mdia, b"minf")
        stbl = _child(data, *minf, b"stbl")
        stsd = _child(data, *stbl, b"stsd")
        codec = data[stsd[0] + 12:stsd[0] + 16].decode("latin-1")
        tracks[track_id] = Track(track_id, handler, timescale, codec)
    return tracks


@dataclass
class Fragment:
    track_id: int
    base_time: int
    durations: list[int] = field(default_factory=list)
    first_sample: bytes = b""


def read_fragments(data: bytes) -> Iterator[Fragment]:
    """Every track fragment of a media segment (default-base-is-moof offsets); Mp4Error
    for anything broken in it."""
    try:
        yield from _read_fragments(data)
    except (struct.error, IndexError) as exc:  # a field past its box
        raise Mp4Error(f"broken media segment ({exc})") from None


def _read_fragments(data: bytes) -> Iterator[Fragment]:
    for kind, body, end in boxes(data):
        if kind != b"moof":
            continue
        moof_start = body - 8
        for traf_kind, traf, traf_end in boxes(data, body, end):
            if traf_kind == b"traf":
                yield _fragment(data, moof_start, traf, traf_end)


def _fragment(data: bytes, moof_start: int, start: int, end: int) -> Fragment:
    tfhd = _child(data, start, end, b"tfhd")
    flags = struct.unpack_from("!I", data, tfhd[0])[0] & 0xFFFFFF
    track_id = struct.unpack_from("!I", data, tfhd[0] + 4)[0]
    position = tfhd[0] + 8
    if flags & 0x01:
        position += 8  # base data offset: not what HLS fMP4 uses
    if flags & 0x02:
        position += 4
    default_duration = struct.unpack_from("!I", data, position)[0] if flags & 0x08 else 0
    tfdt = _child(data, start, end, b"tfdt")
    version = data[tfdt[0]]
    base = struct.unpack_from("!Q" if version == 1 else "!I", data, tfdt[0] + 4)[0]
    fragment = Fragment(track_id, base)
    trun = _child(data, start, end, b"trun")
    trun_flags = struct.unpack_from("!I", data, trun[0])[0] & 0xFFFFFF
    count = struct.unpack_from("!I", data, trun[0] + 4)[0]
    position = trun[0] + 8
    offset = 0
    if trun_flags & 0x01:
        offset = struct.unpack_from("!i", data, position)[0]
        position += 4
    if trun_flags & 0x04:
        position += 4
    per_sample = 4 * bin(trun_flags & 0xF00).count("1")
    if position + count * per_sample > trun[1]:
        raise Mp4Error(f"trun at byte {trun[0]} says {count} samples; its box holds fewer")
    if count > MAX_SAMPLES:
        raise Mp4Error(f"trun at byte {trun[0]} says {count} samples; at most {MAX_SAMPLES}")
    first_size = 0
    for index in range(count):
        duration = default_duration
        if trun_flags & 0x100:
            duration = struct.unpack_from("!I", data, position)[0]
            position += 4
        if trun_flags & 0x200:
            size = struct.unpack_from("!I", data, position)[0]
            position += 4
            if index == 0:
                first_size = size
        position += (4 if trun_flags & 0x400 else 0) + (4 if trun_flags & 0x800 else 0)
        fragment.durations.append(duration)
    if position > trun[1]:
        raise Mp4Error(f"trun at byte {trun[0]} runs past its box")
    sample_start = moof_start + offset
    fragment.first_sample = data[sample_start:sample_start + first_size]
    return fragment
