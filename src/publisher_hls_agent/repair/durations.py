"""A segment's real duration, from its timestamps. Pure.

Video decides when there is video: from the first frame's PTS to the last one's plus a
frame (the median step), which is what a player shows. Audio PES packets may bundle
several frames (FFmpeg puts ~0.2 s in one), so audio alone is measured the same way but
with that coarser step.
"""

from __future__ import annotations

import statistics
from itertools import pairwise

from ..hls.tsparse import Program, TsError, read_pes

CLOCK = 90000
VIDEO_TYPES = {0x01, 0x02, 0x10, 0x1B, 0x24}
AUDIO_TYPES = {0x03, 0x04, 0x0F, 0x11, 0x06, 0x81}


def segment_duration(data: bytes) -> tuple[float, float] | None:
    """``(seconds, frame seconds)`` of a (normalized) MPEG-TS segment, or None when it
    holds no timestamps that can be read."""
    video: list[int] = []
    audio: list[int] = []
    try:
        for pes in read_pes(data, Program()):
            if pes.pts is None:
                continue
            if pes.stream_type in VIDEO_TYPES:
                video.append(pes.pts)
            elif pes.stream_type in AUDIO_TYPES:
                audio.append(pes.pts)
    except TsError:
        pass  # what was read before the damage still counts
    times = sorted(video or audio)
    if not times:
        return None
    steps = [b - a for a, b in pairwise(times) if b > a]
    step = int(statistics.median(steps)) if steps else 0
    return (times[-1] + step - times[0]) / CLOCK, step / CLOCK
