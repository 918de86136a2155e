"""Merges audio and video into one presentation-time order before muxing. Pure.

Audio and video arrive with different delays: a large keyframe is paced out over a few
hundred milliseconds while audio keeps coming. Written as they come, audio from after
a segment boundary would land in the segment before it. So each item waits here until
every stream still sending has reached its time. A stream that has sent nothing for
``max_wait`` seconds (of arrival time) is taken as stopped and holds nobody back, unless
it is held (items known to be coming, from a transcoder behind): then only after
``max_hold`` seconds, so that a stuck stream cannot hold the others for ever.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

T = TypeVar("T")


class Interleaver(Generic[T]):
    def __init__(self, streams: list[str], max_wait: float, max_hold: float = 60.0) -> None:
        self._last_pts: dict[str, int | None] = dict.fromkeys(streams)
        self._last_arrival: dict[str, float | None] = dict.fromkeys(streams)
        self._max_wait = max_wait
        self._max_hold = max_hold
        self._held: set[str] = set()
        self._heap: list[tuple[int, int, str, T]] = []
        self._order = itertools.count()
        self._since: float | None = None  # the first push: streams silent since are stopped

    def push(self, stream: str, pts: int, item: T, now: float) -> list[tuple[str, int, T]]:
        heapq.heappush(self._heap, (pts, next(self._order), stream, item))
        if self._since is None:
            self._since = now
        last = self._last_pts[stream]
        self._last_pts[stream] = pts if last is None else max(last, pts)
        self._last_arrival[stream] = now
        return self._release(now)

    def hold(self, stream: str, held: bool) -> None:
        """Whether items of ``stream`` are known to be coming, however long they take."""
        if held:
            self._held.add(stream)
        else:
            self._held.discard(stream)

    def flush(self) -> list[tuple[str, int, T]]:
        out = []
        while self._heap:
            pts, _, stream, item = heapq.heappop(self._heap)
            out.append((stream, pts, item))
        return out

    def _release(self, now: float) -> list[tuple[str, int, T]]:
        assert self._since is not None
        reached = []
        for stream, last in self._last_pts.items():
            arrival = self._last_arrival[stream]
            wait = self._max_hold if stream in self._held else self._max_wait
            if now - (arrival if arrival is not None else self._since) > wait:
                continue  # stopped: do not wait for it
            if last is None:
                return []  # not heard from yet, but not given up on either
            reached.append(last)
        ready = min(reached) if reached else None
        out = []
        while self._heap and (ready is None or self._heap[0][0] <= ready):
            pts, _, stream, item = heapq.heappop(self._heap)
            out.append((stream, pts, item))
        return out
