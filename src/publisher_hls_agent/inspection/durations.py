"""How long an MPEG-TS segment's media lasts, from its timestamps. Pure.

A stream lasts from its first frame's PTS to its last one's plus a frame (the median
step between PTS), which is what a player shows. Audio PES packets may bundle several
frames (FFmpeg puts ~0.2 s in one), so audio is measured the same way but with that
coarser step. ``check`` spans every stream of a segment; ``fix`` lets video decide
when there is video.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from ..errors import TsError
from ..hls.tsformat import CLOCK
from .tsparse import Program, read_pes

# Which PMT stream types are video and which audio. ``check`` holds our recordings to
# our rules and counts what our writer puts in a segment (H.264, AAC; private data, as
# some muxers carry Opus); ``fix`` takes other tools' segments, in any usual codec.
OUR_STREAMS = {0x1B: "video", 0x0F: "audio", 0x06: "audio"}
ANY_STREAMS = {**{t: "video" for t in (0x01, 0x02, 0x10, 0x1B, 0x24)},
               **{t: "audio" for t in (0x03, 0x04, 0x0F, 0x11, 0x06, 0x81)}}


@dataclass
class TsSegment:
    """What the PES units of one segment say."""

    times: dict[str, list[int]] = field(default_factory=dict)  # kind -> PTS as read
    first_video: bytes | None = None  # the elementary stream of its first video PES
    tables_first: bool = False  # PAT and PMT before any elementary stream packet
    error: TsError | None = None  # where reading stopped; what came before still counts


@dataclass(frozen=True)
class Span:
    """A segment's media, in 90 kHz ticks."""

    start: int
    end: int  # the end of the last frame
    frame: int  # the longest of its streams' frame steps: the tolerance unit


def read_segment(data: bytes, kinds: Mapping[int, str]) -> TsSegment:
    """The timestamps of ``data`` by stream kind (``kinds``: stream type -> kind)."""
    program = Program()
    segment = TsSegment()
    try:
        for pes in read_pes(data, program):
            kind = kinds.get(pes.stream_type) if pes.stream_type is not None else None
            if kind is None or pes.pts is None:
                continue
            segment.times.setdefault(kind, []).append(pes.pts)
            if kind == "video" and segment.first_video is None:
                segment.first_video = pes.data
    except TsError as exc:
        segment.error = exc
    segment.tables_first = program.tables_first
    return segment


def frame_step(times: Sequence[int]) -> int:
    """The median step between successive timestamps (0 for fewer than two)."""
    ordered = sorted(times)
    steps = [b - a for a, b in pairwise(ordered) if b > a]
    return int(statistics.median(steps)) if steps else 0


def frame_steps(times: Mapping[str, Sequence[int]],
                known: Mapping[str, int] | None = None) -> dict[str, int]:
    """Each stream's frame step; a stream with one frame here lasts as long as its
    frames before (``known``, from the segments before)."""
    known = known or {}
    return {kind: frame_step(ts) or known.get(kind, 0) for kind, ts in times.items()}


def media_span(times: Mapping[str, Sequence[int]], steps: Mapping[str, int]) -> Span | None:
    """From the earliest timestamp of any stream to the end of the last frame of any;
    None without timestamps."""
    streams = [(ts, steps[kind]) for kind, ts in times.items() if ts]
    if not streams:
        return None
    return Span(min(min(ts) for ts, _ in streams),
                max(max(ts) + step for ts, step in streams),
                max(step for _, step in streams))


def segment_duration(data: bytes) -> tuple[float, float] | None:
    """``(seconds, frame seconds)`` of a (normalized) MPEG-TS segment, or None when it
    holds no timestamps that can be read; what comes before damage still counts."""
    times = read_segment(data, ANY_STREAMS).times
    kind = "video" if times.get("video") else "audio"
    chosen = {kind: times.get(kind, [])}
    span = media_span(chosen, frame_steps(chosen))
    if span is None:
        return None
    return (span.end - span.start) / CLOCK, span.frame / CLOCK
