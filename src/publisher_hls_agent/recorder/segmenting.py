"""When to cut a segment and when to ask for a keyframe. Pure.

A segment is cut only on a keyframe, and only once the target duration has passed.
Keyframes mostly come on request, so one is asked for when the target is reached, and
again every ``retry`` while none has come (the SFU drops PLIs closer than a second).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    cut: bool = False
    request_keyframe: bool = False


NOTHING = Decision()


class SegmentPolicy:
    def __init__(self, target: int, retry: int) -> None:
        self.target = target  # ticks of the timeline (90 kHz)
        self.retry = retry
        self.segment_start: int | None = None
        self._requested_at: int | None = None

    def on_video(self, pts: int, keyframe: bool) -> Decision:
        start = self.segment_start
        if start is None:
            return self._cut(pts) if keyframe else NOTHING
        elapsed = pts - start
        if elapsed < self.target:
            return NOTHING
        if keyframe:
            return self._cut(pts)
        if self._requested_at is None or pts - self._requested_at >= self.retry:
            self._requested_at = pts
            return Decision(request_keyframe=True)
        return NOTHING

    def on_audio_only(self, pts: int) -> Decision:
        """Every AAC frame starts a decodable point: cut on time alone."""
        start = self.segment_start
        if start is None or pts - start >= self.target:
            return self._cut(pts)
        return NOTHING

    def force_cut(self, pts: int) -> Decision:
        """A cut the stream demands (a discontinuity), whatever the elapsed time."""
        return self._cut(pts)

    def due(self, pts: int) -> bool:
        return self.segment_start is not None and pts - self.segment_start >= self.target

    def _cut(self, pts: int) -> Decision:
        self.segment_start = pts
        self._requested_at = None
        return Decision(cut=True)
