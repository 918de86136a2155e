"""When to cut a segment and when to ask for a keyframe. Pure.

A segment is cut only on a keyframe, and only once the target duration has passed
(within ``CUT_TOLERANCE``: a publisher whose keyframe interval is the segment's has its
keyframes a tick or two either side of it, as its clock rounds, and one just short must
not cost a keyframe request and a segment of twice the target). Keyframes mostly come on
request, so one is asked for as the target nears, and again every ``retry`` while none
has come; never while a keyframe that ends the segment is on its way to it.

How early to ask is learned. A keyframe asked for arrives some media time after the
request: a round trip and a frame at best, but a publisher's pacer queue (a fixed-rate
encoder starting above its bandwidth estimate) or an overloaded browser makes that
hundreds of milliseconds or seconds, and every segment then ran over its target by as
much. So the policy asks ``lead`` ahead of the target, the longest of the last few
answers (at most half the target), and the keyframe that answers a request ends the
segment even a little short of the target. Answers under ``LEAD_LEAST`` leave the
request at the target: a publisher that answers within it costs a segment that much
over it, and one whose own keyframe cadence is the segment's is not asked at all.
"""

from __future__ import annotations

from collections import deque

CUT_TOLERANCE = 4500  # ticks of the timeline (90 kHz): 50 ms, under a frame at 20 fps
LEAD_MEMORY = 3  # answers the lead is the longest of
# 0.4 s: answers quicker than this are not asked ahead of. The target duration has a
# second of headroom, and an early request is a PLI the publisher's own keyframe, due
# at the target, might have made needless; under loss each PLI also stops the SFU's
# retransmissions for a round trip (measured at 5 % loss: answers of 0.07-0.3 s).
LEAD_LEAST = 36000


class SegmentPolicy:
    def __init__(self, target: int, retry: int) -> None:
        self.target = target  # ticks of the timeline (90 kHz)
        self.retry = retry
        self.segment_start: int | None = None
        self._requested_at: int | None = None  # the last request in this segment
        self._first_request: int | None = None  # the first one: an answer is after it
        self._answered: int | None = None  # the first request whose answer is counted
        self._cut_coming: int | None = None  # an arrived keyframe that ends the segment
        self._answers: deque[int] = deque(maxlen=LEAD_MEMORY)  # request to keyframe

    @property
    def lead(self) -> int:
        """How long before the target a keyframe is asked for."""
        longest = max(self._answers, default=0)
        return min(longest, self.target // 2) if longest >= LEAD_LEAST else 0

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
            asked = self._answered_request(pts)
            if asked is not None and self._answered != asked:
                self._answered = asked
                self._answers.append(pts - asked)
            if self._ends_segment(pts):
                self._cut_coming = pts
            return False
        if (self._cut_coming is not None and self._cut_coming > start) or (
                pts - start < self.target - self.lead):
            return False
        if self._requested_at is None or pts - self._requested_at >= self.retry:
            self._requested_at = pts
            if self._first_request is None:
                self._first_request = pts
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

    def _answered_request(self, pts: int) -> int | None:
        """The request a keyframe at ``pts`` answers, if any: the segment's first."""
        asked = self._first_request
        return asked if asked is not None and pts >= asked else None

    def _ends_segment(self, pts: int) -> bool:
        start = self.segment_start
        return start is None or pts - start >= self.target - CUT_TOLERANCE or (
            self._answered_request(pts) is not None and pts - start >= self.target // 2)

    def _cut(self, pts: int) -> bool:
        self.segment_start = pts
        self._requested_at = self._first_request = None
        return True
