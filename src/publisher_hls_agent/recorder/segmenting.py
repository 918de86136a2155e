"""When to cut a segment and when to ask for a keyframe. Pure.

A segment is cut only on a keyframe, and only once the target duration has passed
(within ``CUT_TOLERANCE``: a publisher whose keyframe interval is the segment's has its
keyframes a tick or two either side of it, as its clock rounds, and one just short must
not cost a keyframe request and a segment of twice the target). Keyframes mostly come on
request, so one is asked for when the target is reached, and again every ``retry``
while none has come; never while a keyframe that ends the segment is on its way to it.
"""

from __future__ import annotations

CUT_TOLERANCE = 4500  # ticks of the timeline (90 kHz): 50 ms, under a frame at 20 fps


class SegmentPolicy:
    def __init__(self, target: int, retry: int) -> None:
        self.target = target  # ticks of the timeline (90 kHz)
        self.retry = retry
        self.segment_start: int | None = None
        self._requested_at: int | None = None
        self._cut_coming: int | None = None  # an arrived keyframe that ends the segment

    def on_video(self, pts: int, keyframe: bool) -> bool:
        """Where a frame goes, in presentation order: does it start a segment?"""
        if keyframe and self._ends_segment(pts):
            return self._cut(pts)
        return False

    def wants_keyframe(self, pts: int, keyframe: bool = False) -> bool:
        """On a frame's *arrival*: ask for a keyframe now? Asked at arrival, not when the
        frame is written, because writing waits for the other stream to catch up."""
        start = self.segment_start
        if start is None:
            return False
        if keyframe:
            if self._ends_segment(pts):
                self._cut_coming = pts
            return False
        if (self._cut_coming is not None and self._cut_coming > start) or (
                pts - start < self.target):
            return False
        if self._requested_at is None or pts - self._requested_at >= self.retry:
            self._requested_at = pts
            return True
        return False

    def on_audio_only(self, pts: int) -> bool:
        """Every AAC frame starts a decodable point: cut on time alone."""
        start = self.segment_start
        if start is None or pts - start >= self.target:
            return self._cut(pts)
        return False

    def force_cut(self, pts: int) -> bool:
        """A cut the stream demands (a discontinuity), whatever the elapsed time."""
        return self._cut(pts)

    def due(self, pts: int) -> bool:
        return self.segment_start is not None and pts - self.segment_start >= self.target

    def _ends_segment(self, pts: int) -> bool:
        start = self.segment_start
        return start is None or pts - start >= self.target - CUT_TOLERANCE

    def _cut(self, pts: int) -> bool:
        self.segment_start = pts
        self._requested_at = None
        return True
