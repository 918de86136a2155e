"""Held segments: a recording ends where its publisher's media ends. Pure.

When a publisher's camera stops and its microphone sends only silence (an SDK whose
source went idle, a browser's disabled track), the recorder bridges the pause: the last
picture repeated at each segment's start, the holes between packets filled with
silence. Whether that is a pause or the end is known only later. So a segment whose
real media (a picture the publisher sent, audio that is not silence) ends more than
``tolerance`` before the segment does is held back, not published, until one of two
things happens:

- real media comes again: the pause was a pause, and what was held is published as it
  is, before the segment that brings the media back;
- the recording ends: the pause was the end, and the last segment with real media is
  cut where that media ends; what followed it is never published.

Held media is bounded (``limit``): a pause longer than that is published as it is, so
that live viewers and the real-time upload see the pause go on; only what came after is
trimmed at the end. (Live viewers of a frozen, silent stretch wait up to ``limit`` for
its segments: the price of not publishing what may be cut.) Until the first real media
is marked nothing is held (a writer used on its own, with no one to say what is real).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Mark:
    """Where the last real media of a segment ends: ``position`` in the segment's content
    (the format's own measure), ``end`` on the recording timeline (90 kHz)."""

    position: Any
    end: int


@dataclass(frozen=True)
class Pending:
    """A segment closed but not yet published."""

    sequence: int
    start: int  # 90 kHz
    end: int
    discontinuity: bool
    map_uri: str | None
    content: Any  # the format's: what the segment's bytes are made from
    real: Mark | None  # its last real media, if any
    trimmed: bool = False  # cut at ``real``: its content ends at ``real.position``


class TailHold:
    def __init__(self, *, tolerance: int, limit: int) -> None:
        self._tolerance = tolerance
        self._limit = limit
        self._held: list[Pending] = []
        self.active = False  # from the first real media on
        self.trimmed = 0  # 90 kHz of media never published, once finished

    def close(self, segment: Pending) -> list[Pending]:
        """A segment closed: the segments to publish now, in order."""
        if not self.active or self._real_through(segment):
            out, self._held = [*self._held, segment], []
            return out
        self._held.append(segment)
        if self._held[-1].end - self._held[0].start > self._limit:
            out, self._held = self._held, []
            return out
        return []

    def finish(self, last: Pending | None) -> list[Pending]:
        """The recording ended (``last``: its open segment): what to publish; the last of
        them is cut at its real media when that ends early."""
        candidates = [*self._held, *([last] if last is not None else [])]
        self._held = []
        if not self.active:
            return candidates
        real = [i for i, segment in enumerate(candidates) if segment.real is not None]
        # None: the real media ended in a segment already published.
        keep = candidates[:real[-1] + 1] if real else []
        if keep and not self._real_through(keep[-1]):
            final = keep[-1]
            assert final.real is not None
            keep[-1] = replace(final, end=final.real.end, trimmed=True)
        self.trimmed = _length(candidates) - _length(keep)
        return keep

    def _real_through(self, segment: Pending) -> bool:
        return segment.real is not None and segment.real.end >= segment.end - self._tolerance


def _length(segments: list[Pending]) -> int:
    return sum(segment.end - segment.start for segment in segments)
