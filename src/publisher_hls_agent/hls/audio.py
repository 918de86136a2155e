"""The unit of audio the segment writers take, whatever the codec."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AudioFrame:
    data: bytes  # ADTS AAC frame, or one Opus packet
    pts: int  # 48 kHz samples on the recording timeline
    duration: int  # 48 kHz samples

    @property
    def pts_90k(self) -> int:
        return self.pts * 15 // 8
