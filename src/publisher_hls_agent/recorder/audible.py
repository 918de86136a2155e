"""Which stretches of a recording's audio hold sound its publisher sent. Pure.

Silence does not count: the packets an idle or muted source sends (``opus.is_silence``)
and the holes between packets, which the audio stages fill with silence. The pipeline
asks about each audio frame as it writes it, in order, so that frozen picture and
silence at the end of a recording can be told from real media (``hls/tail.py``).
"""

from __future__ import annotations

from collections import deque

from ..hls.opus import is_silence, packet_samples


class AudibleSpans:
    def __init__(self) -> None:
        # [start, end) in 48 kHz samples, in order; the oldest go first if no frame is
        # ever asked about (audio held before the recording's first segment).
        self._spans: deque[list[int]] = deque(maxlen=1000)

    def packet(self, data: bytes, pts: int) -> None:
        """An Opus packet that starts at sample ``pts`` of the recording."""
        if is_silence(data):
            return
        end = pts + packet_samples(data)
        if self._spans and pts <= self._spans[-1][1]:  # adjoining, or a late packet
            last = self._spans[-1]
            last[0], last[1] = min(last[0], pts), max(last[1], end)
        else:
            self._spans.append([pts, end])

    def covers(self, start: int, end: int) -> bool:
        """Whether the frame ``[start, end)`` holds any sound; frames are asked about in
        order, and what lies before ``start`` is forgotten."""
        while self._spans and self._spans[0][1] <= start:
            self._spans.popleft()
        return bool(self._spans) and self._spans[0][0] < end
