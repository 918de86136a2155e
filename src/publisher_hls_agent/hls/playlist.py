"""The HLS media playlist (RFC 8216): a model and its text. Pure.

A recording's playlist is EVENT while it grows and ends with EXT-X-ENDLIST; a sliding
window (``max_segments``) keeps the last N entries and carries no PLAYLIST-TYPE, with
MEDIA-SEQUENCE and DISCONTINUITY-SEQUENCE counting what slid out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True)
class Segment:
    uri: str
    duration: float  # seconds, the segment's real media duration
    sequence: int
    discontinuity: bool = False  # the stream changes before this segment
    program_date_time: datetime | None = None  # wall clock of its first sample
    map_uri: str | None = None  # fMP4: its init segment, when not the playlist's first


@dataclass(frozen=True)
class Playlist:
    target_duration: int
    init_uri: str | None = None  # fMP4: EXT-X-MAP
    max_segments: int = 0  # 0: keep every segment (EVENT playlist)
    segments: tuple[Segment, ...] = ()
    dropped_discontinuities: int = 0
    ended: bool = False

    def add(self, segment: Segment) -> tuple[Playlist, list[Segment]]:
        """The playlist with ``segment`` appended, and the segments that slid out.

        A segment longer than the target duration (a passthrough publisher whose
        keyframe came seconds late: nothing can be cut before it) raises the target
        to fit. RFC 8216 asks for a target that never changes, and for EXTINFs within
        it; of the two, this keeps the second, so that every playlist written is valid
        on its own, the final one (the recording) included."""
        if self.ended:
            raise ValueError("cannot add a segment to an ended playlist")
        segments = (*self.segments, segment)
        removed: list[Segment] = []
        if self.max_segments and len(segments) > self.max_segments:
            removed = list(segments[: len(segments) - self.max_segments])
            segments = segments[len(removed):]
        dropped = self.dropped_discontinuities + sum(s.discontinuity for s in removed)
        target = max(self.target_duration, rounded_duration(segment.duration))
        return replace(self, target_duration=target, segments=segments,
                       dropped_discontinuities=dropped), removed

    def end(self) -> Playlist:
        return replace(self, ended=True)

    @property
    def media_sequence(self) -> int:
        return self.segments[0].sequence if self.segments else 0


def rounded_duration(seconds: float) -> int:
    """EXTINF rounded to the nearest integer, as RFC 8216 §4.3.3.1 compares it."""
    return math.floor(seconds + 0.5)


def render(playlist: Playlist) -> str:
    version = 6 if playlist.init_uri else 3
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}",
             f"#EXT-X-TARGETDURATION:{playlist.target_duration}"]
    if not playlist.max_segments:
        lines.append("#EXT-X-PLAYLIST-TYPE:EVENT")
    lines.append(f"#EXT-X-MEDIA-SEQUENCE:{playlist.media_sequence}")
    if playlist.dropped_discontinuities:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{playlist.dropped_discontinuities}")
    lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    current = None  # EXT-X-MAP applies to every segment after it, until the next one
    for segment in playlist.segments:
        if segment.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if (init := segment.map_uri or playlist.init_uri) and init != current:
            lines.append(f'#EXT-X-MAP:URI="{init}"')
            current = init
        if segment.program_date_time is not None:
            stamp = segment.program_date_time.isoformat(timespec="milliseconds")
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp.replace('+00:00', 'Z')}")
        lines.append(f"#EXTINF:{segment.duration:.6f},")
        lines.append(segment.uri)
    if playlist.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
