"""Writes one recording's files: segments, the whole recording and the playlist.

The caller (the recorder) decides where segments start; a writer only turns that into
files, in an order a reader can rely on: a segment file is complete (written to a temp
name, then renamed) before the playlist names it, and every playlist write is atomic.
``SegmentedWriter`` holds that common part; ``TsHlsWriter`` (here) and
``Fmp4HlsWriter`` (``fmp4_writer.py``) say what a segment's bytes are. A closed
segment may be held back before it is published (``tail.py``: frozen picture and filled
silence wait to see whether the publisher comes back).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from ..layout import OUTPUT_NAME, PLAYLIST_NAME, TS_SEGMENT_SUFFIX, segment_name
from .audio import AudioFrame
from .files import atomic_write
from .mpegts import Streams, TsMuxer
from .playlist import Playlist, Segment, render
from .tail import Mark, Pending, TailHold
from .tsformat import CLOCK

logger = logging.getLogger(__name__)

# A segment whose real media ends this much before it does is held (tail.py). Below
# the recorder's stall (pipeline.STALL, 0.7 s), after which it repeats the last picture;
# a segment held for a shorter gap (loss at its end) is only published a segment late.
TAIL_TOLERANCE = CLOCK // 4
# A pause longer than this is published as it goes on: live viewers wait at most this
# long for the segments of a frozen, silent stretch, and only its last this-much can be
# cut from a recording's end.
HOLD_LIMIT = 10 * CLOCK


def target_duration_for(segment_duration: float) -> int:
    """EXT-X-TARGETDURATION for a segment length target.

    Segments are cut at the first keyframe once the target has passed, so they run a
    little over it (the keyframe asked for at the boundary takes a frame or a few to
    arrive). One second of headroom keeps every rounded EXTINF within the target, which
    RFC 8216 forbids changing once published; only a keyframe that comes later than
    that makes the playlist raise it (``Playlist.add``).
    """
    return max(1, math.ceil(segment_duration)) + 1


@dataclass(frozen=True)
class SegmentRecord:
    name: str
    sequence: int
    start_pts: int  # 90 kHz on the recording timeline
    duration: float
    bytes: int
    discontinuity: bool


class SegmentedWriter:
    """Segments, the playlist and the whole-recording file, for any segment format."""

    output_name = OUTPUT_NAME
    init_name: str | None = None
    segment_suffix = TS_SEGMENT_SUFFIX

    def __init__(self, folder: Path, *, segment_duration: float, max_segments: int,
                 started_at: datetime,
                 on_segment: Callable[[SegmentRecord, bytes], None] | None = None) -> None:
        self.folder = folder
        self._playlist = Playlist(target_duration=target_duration_for(segment_duration),
                                  max_segments=max_segments, init_uri=self.init_name)
        self._started_at = started_at  # wall clock of pts 0
        self._on_segment = on_segment
        self._output: BinaryIO = (folder / self.output_name).open("wb")
        self._current: tuple[int, int, bool] | None = None  # (sequence, start pts, discont.)
        self._map_uri: str | None = None  # fMP4: the open segment's init, if not the first
        self._next_sequence = 0
        self._real: Mark | None = None  # the open segment's last real media
        self._tail = TailHold(tolerance=TAIL_TOLERANCE, limit=HOLD_LIMIT)
        self.segments: list[SegmentRecord] = []
        self.end_pts = 0  # where the last published segment ends
        self.closed = False

    @property
    def trimmed(self) -> float:
        """Seconds of frozen picture and filled silence cut from the end (``finish``)."""
        return self._tail.trimmed / CLOCK

    @property
    def segment_start(self) -> int | None:
        return self._current[1] if self._current else None

    def start_segment(self, pts: int, *, discontinuity: bool = False,
                      previous_end: int | None = None) -> None:
        """Close the open segment and open the next one at ``pts``.

        The closed segment lasts up to ``pts``, or to ``previous_end`` when the caller
        knows the timeline jumps here (a discontinuity) and where the media really ended.
        """
        if self._current is not None:
            self._publish(self._tail.close(
                self._take_segment(previous_end if previous_end is not None else pts)))
        self._current = (self._next_sequence, pts, discontinuity)
        self._next_sequence += 1
        self._open_segment(pts)

    def replace_open_segment(self, pts: int) -> None:
        """Drop what the open segment holds and start it again at ``pts``, with a
        discontinuity unless it is the first: for a keyframe with a new picture size
        that lands a frame after the segment began (the server switching simulcast
        layers on the keyframes our own request made), where a cut would leave a
        segment of one frame and no audio. ``output.ts`` keeps the dropped frame."""
        assert self._current is not None
        sequence = self._current[0]
        self._discard_open_segment()
        self._real = None
        self._current = (sequence, pts, sequence > 0)
        self._open_segment(pts)

    def write_video(self, annexb: bytes, pts: int, keyframe: bool) -> None:
        raise NotImplementedError

    def write_audio(self, frame: AudioFrame) -> None:
        raise NotImplementedError

    def mark_real(self, end_pts: int) -> None:
        """What was just written is the publisher's media (not a repeated picture, not
        silence), and ends at ``end_pts``. The real media ends at the latest such end:
        the streams' last frames, flushed at the end, come one stream after the other."""
        if self._real is not None:
            end_pts = max(end_pts, self._real.end)
        self._real = Mark(self._position(), end_pts)
        self._tail.active = True

    def finish(self, end_pts: int) -> list[SegmentRecord]:
        """Close the last segment at ``end_pts`` (or where its real media ends, see
        ``tail.py``), end the playlist, close files."""
        if self.closed:
            return self.segments
        last = self._take_segment(end_pts) if self._current is not None else None
        self._publish(self._tail.finish(last))
        self._output_finished()
        self._playlist = self._playlist.end()
        atomic_write(self.folder / PLAYLIST_NAME, render(self._playlist).encode())
        self._output.close()
        self.closed = True
        return self.segments

    def end_segment(self, end_pts: int) -> None:
        """Close the open segment at ``end_pts`` and open none: what comes next waits
        for ``start_segment``."""
        if self._current is not None:
            self._publish(self._tail.close(self._take_segment(end_pts)))

    def restart(self) -> None:
        """After a failure inside the pipeline: forget the format's running state (the
        recording goes on after a discontinuity, so nothing needs to run on)."""

    def video_joins(self) -> None:
        """A recording begun on audio alone gains its video from the next segment on
        (which the caller starts with a discontinuity)."""
        raise NotImplementedError(f"{type(self).__name__} cannot add video once begun")

    def _open_segment(self, pts: int) -> None:
        """Begin a segment's bytes (a format's headers)."""

    def _position(self) -> Any:
        """Where the open segment's content ends now (for ``Mark``)."""
        raise NotImplementedError

    def _take_content(self) -> Any:
        """The open segment's media, which the format forgets; the next begins empty."""
        raise NotImplementedError

    def _segment_bytes(self, segment: Pending) -> bytes:
        """A segment's bytes, as it is published (cut at its real media when
        ``trimmed``); the format may still add to ``output`` here."""
        raise NotImplementedError

    def _output_finished(self) -> None:
        """The last segment is published: ``output`` holds nothing after it."""

    def _discard_open_segment(self) -> None:
        """Forget the media of the open segment (``replace_open_segment``)."""
        raise NotImplementedError

    def _take_segment(self, end_pts: int) -> Pending:
        assert self._current is not None
        sequence, start, discontinuity = self._current
        segment = Pending(sequence, start, end_pts, discontinuity, self._map_uri,
                          self._take_content(), self._real)
        self._current, self._real = None, None
        return segment

    def _publish(self, segments: list[Pending]) -> None:
        for segment in segments:
            self._publish_one(segment)

    def _publish_one(self, segment: Pending) -> None:
        self.end_pts = segment.end
        name = segment_name(segment.sequence, self.segment_suffix)
        data = self._segment_bytes(segment)
        atomic_write(self.folder / name, data)
        record = SegmentRecord(name, segment.sequence, segment.start,
                               max(0, segment.end - segment.start) / CLOCK, len(data),
                               segment.discontinuity)
        self.segments.append(record)
        target = self._playlist.target_duration
        self._playlist, removed = self._playlist.add(Segment(
            uri=name, duration=record.duration, sequence=segment.sequence,
            discontinuity=segment.discontinuity,
            program_date_time=self._started_at + timedelta(seconds=segment.start / CLOCK),
            map_uri=segment.map_uri))
        if self._playlist.target_duration != target:
            logger.warning("%s/%s lasts %.3f s, past the playlist's target duration: the "
                           "target is now %d s (the publisher's keyframe came late)",
                           self.folder.name, name, record.duration,
                           self._playlist.target_duration)
        self._output.flush()
        playlist = render(self._playlist).encode()
        atomic_write(self.folder / PLAYLIST_NAME, playlist)
        for old in removed:  # slid out of the window: the whole-recording file keeps it
            (self.folder / old.uri).unlink(missing_ok=True)
        if self._on_segment is not None:  # the segment, and the playlist that names it
            self._on_segment(record, playlist)


class TsHlsWriter(SegmentedWriter):
    """MPEG-TS segments; ``output.ts`` is the same bytes back to back, from one muxer,
    so timestamps and continuity counters run on across segment boundaries. It is
    written as the media comes: at the end it is cut back to the last segment
    published."""

    def __init__(self, folder: Path, streams: Streams, **options: Any) -> None:
        self._streams = streams
        self._muxer = TsMuxer(streams)
        self._buffer = bytearray()
        self._written = 0  # bytes in output.ts
        self._segment_offset = 0  # where the open segment's bytes begin in output.ts
        self._published_end = 0  # where the last published segment's end there
        super().__init__(folder, **options)

    def write_video(self, annexb: bytes, pts: int, keyframe: bool) -> None:
        self._emit(self._muxer.video(annexb, pts, pts, keyframe))

    def write_audio(self, frame: AudioFrame) -> None:
        self._emit(self._muxer.audio(frame.data, frame.pts_90k))

    def restart(self) -> None:
        self._muxer = TsMuxer(self._streams)

    def video_joins(self) -> None:
        self._streams = Streams(video=True, audio=self._streams.audio)
        self._muxer.announce(self._streams)

    def _open_segment(self, pts: int) -> None:
        self._segment_offset = self._written
        self._emit(self._muxer.tables())

    def _emit(self, data: bytes) -> None:
        self._buffer += data
        self._output.write(data)
        self._written += len(data)

    def _position(self) -> int:
        return len(self._buffer)

    def _take_content(self) -> tuple[bytes, int]:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data, self._segment_offset

    def _segment_bytes(self, segment: Pending) -> bytes:
        data: bytes
        offset: int
        data, offset = segment.content
        if segment.trimmed:  # TS packets stand alone: the cut falls between two
            assert segment.real is not None
            data = data[:segment.real.position]
        self._published_end = offset + len(data)
        return data

    def _output_finished(self) -> None:
        if self._published_end < self._written:
            self._output.flush()
            self._output.truncate(self._published_end)

    def _discard_open_segment(self) -> None:
        self._buffer.clear()
