"""What ``check`` learns from one segment: its streams, its media's span, how its video
starts, and what is broken in it. Pure: bytes in, ``SegmentFacts`` out.

MPEG-TS is read with ``inspection.tsparse`` and measured with ``inspection.durations``
(as ``fix`` measures); fMP4 with ``inspection.mp4parse``, each track in its timescale.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..errors import Mp4Error
from ..inspection.durations import OUR_STREAMS, frame_steps, media_span, read_segment
from ..inspection.mp4parse import Track, read_fragments
from ..media import av1, h264, vp9
from .tsformat import CLOCK


@dataclass
class SegmentFacts:
    name: str
    extinf: float
    start: float | None = None  # seconds
    end: float | None = None
    frame: float = 0.0  # the longest frame duration seen: the tolerance unit
    streams: set[str] = field(default_factory=set)
    video_start: str = "-"
    errors: list[str] = field(default_factory=list)  # what is broken in the segment itself

    @property
    def real(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start


def measure_ts(name: str, extinf: float, data: bytes,
               known_frames: dict[str, int] | None = None) -> SegmentFacts:
    """An MPEG-TS segment. ``known_frames``: each stream's frame step so far, kept
    up to date across the segments of a playlist."""
    facts = SegmentFacts(name, extinf)
    segment = read_segment(data, OUR_STREAMS)
    if segment.error is not None:
        facts.errors.append(f"{name}: {segment.error}")
        return facts
    if not segment.tables_first:
        facts.errors.append(f"{name}: does not start with PAT and PMT")
    facts.streams = set(segment.times)
    if segment.first_video is not None:
        _check_first_video(facts, [n for n in h264.split_annexb(segment.first_video) if n])
    known = known_frames if known_frames is not None else {}
    steps = frame_steps(segment.times, known)
    known.update({kind: step for kind, step in steps.items() if step})
    span = media_span(segment.times, steps)
    if span is not None:
        facts.start, facts.end, facts.frame = (span.start / CLOCK, span.end / CLOCK,
                                               span.frame / CLOCK)
    return facts


def measure_fmp4(name: str, extinf: float, data: bytes,
                 tracks: dict[int, Track]) -> SegmentFacts:
    """An fMP4 media segment, with the tracks of its init segment."""
    facts = SegmentFacts(name, extinf)
    try:
        fragments = list(read_fragments(data))
    except (Mp4Error, struct.error) as exc:
        facts.errors.append(f"{name}: {exc}")
        return facts
    if data[4:8] not in (b"moof", b"styp"):
        facts.errors.append(f"{name}: does not start with a moof")
    starts, ends, frames = [], [], []
    for fragment in fragments:
        track = tracks.get(fragment.track_id)
        if track is None or not fragment.durations:
            continue
        kind = "video" if track.handler == "vide" else "audio"
        facts.streams.add(kind)
        starts.append(fragment.base_time / track.timescale)
        ends.append((fragment.base_time + sum(fragment.durations)) / track.timescale)
        frames.append(max(fragment.durations) / track.timescale)
        if kind == "video" and track.codec in _KEYFRAME_TESTS:
            _check_first_picture(facts, track.codec, fragment.first_sample)
        elif kind == "video":
            _check_first_video(facts, _length_prefixed(fragment.first_sample))
    if starts:
        facts.start, facts.end, facts.frame = min(starts), max(ends), max(frames)
    return facts


def _length_prefixed(sample: bytes) -> list[bytes]:
    nals, position = [], 0
    while position + 4 <= len(sample):
        size = int.from_bytes(sample[position:position + 4], "big")
        nals.append(sample[position + 4:position + 4 + size])
        position += 4 + size
    return [n for n in nals if n]


_NAL_NAMES = {h264.NAL_SPS: "SPS", h264.NAL_PPS: "PPS", h264.NAL_IDR: "IDR",
              h264.NAL_SEI: "SEI", h264.NAL_AUD: "AUD", h264.NAL_SLICE: "P"}


def _check_first_video(facts: SegmentFacts, nals: list[bytes]) -> None:
    kinds = [h264.nal_type(n) for n in nals]
    facts.video_start = ",".join(_NAL_NAMES.get(t, str(t)) for t in kinds)
    idr = kinds.index(h264.NAL_IDR) if h264.NAL_IDR in kinds else -1
    if idr < 0 or h264.NAL_SPS not in kinds[:idr] or h264.NAL_PPS not in kinds[:idr]:
        facts.errors.append(f"{facts.name}: video does not start with SPS, PPS and an IDR "
                            f"(starts {facts.video_start})")


_KEYFRAME_TESTS = {"vp09": vp9.is_keyframe, "av01": av1.is_keyframe}


def _check_first_picture(facts: SegmentFacts, codec: str, sample: bytes) -> None:
    """VP9 and AV1: the segment's first sample must be a keyframe (for AV1, one with
    its sequence header)."""
    try:
        keyframe = _KEYFRAME_TESTS[codec](sample)
    except ValueError as exc:  # each codec's payload errors (a broken leb128, say)
        facts.video_start = f"{codec} broken"
        facts.errors.append(f"{facts.name}: the first {codec} sample is broken ({exc})")
        return
    facts.video_start = f"{codec} {'keyframe' if keyframe else 'inter frame'}"
    if not keyframe:
        facts.errors.append(f"{facts.name}: video does not start with a {codec} keyframe")
