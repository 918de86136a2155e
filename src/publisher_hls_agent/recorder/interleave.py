"""Merges audio and video into one presentation-time order before muxing. Pure.

Audio and video arrive with different delays. Written as they come, an audio frame
from just before a segment boundary could land after the boundary's keyframe, in the
next segment. So items wait here until every live stream has reached their time, or
until they are ``max_delay`` older than the newest item (a stream that stopped must
not hold the others back).
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

T = TypeVar("T")


class Interleaver(Generic[T]):
    def __init__(self, streams: list[str], max_delay: int) -> None:
        self._last: dict[str, int | None] = dict.fromkeys(streams)
        self._max_delay = max_delay
        self._heap: list[tuple[int, int, str, T]] = []
        self._order = itertools.count()
        self._newest: int | None = None

    def push(self, stream: str, pts: int, item: T) -> list[tuple[str, int, T]]:
        heapq.heappush(self._heap, (pts, next(self._order), stream, item))
        self._last[stream] = pts
        if self._newest is None or pts > self._newest:
            self._newest = pts
        return self._release()

    def flush(self) -> list[tuple[str, int, T]]:
        out = []
        while self._heap:
            pts, _, stream, item = heapq.heappop(self._heap)
            out.append((stream, pts, item))
        return out

    def _release(self) -> list[tuple[str, int, T]]:
        assert self._newest is not None
        horizon = self._newest - self._max_delay
        lasts = [last for last in self._last.values() if last is not None and last >= horizon]
        ready = min(lasts) if len(lasts) == len(self._last) else horizon
        ready = max(ready, horizon)
        out = []
        while self._heap and self._heap[0][0] <= ready:
            pts, _, stream, item = heapq.heappop(self._heap)
            out.append((stream, pts, item))
        return out
