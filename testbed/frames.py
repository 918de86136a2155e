"""What a recording holds of the video it was sent, read back from its files.

The figures the loss tests and the benchmark print: frames recorded against what the
recording's duration should hold at the publisher's rate, and the longest gap between
two pictures, in media time (a wall clock would measure the machine, not the media).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import av

from publisher_hls_agent.layout import OUTPUT_NAME


@dataclass(frozen=True)
class VideoFigures:
    frames: int
    expected: int
    longest_gap: float  # seconds between two consecutive pictures
    gaps_over: dict[float, int]  # gaps longer than each threshold (seconds): how many

    @property
    def ratio(self) -> float:
        return self.frames / self.expected if self.expected else 0.0

    def render(self) -> str:
        over = ", ".join(f"{count} over {limit:g} s" for limit, count in self.gaps_over.items())
        return (f"{self.frames}/{self.expected} frames ({self.ratio:.1%}), longest gap "
                f"{self.longest_gap * 1000:.0f} ms ({over})")


def picture_times(folder: Path) -> list[float]:
    """Presentation times of the video of a finished recording (its whole-file copy)."""
    path = folder / OUTPUT_NAME
    if not path.exists():
        path = folder / "output.mp4"
    with av.open(str(path)) as container:
        if not container.streams.video:  # the video never came (recording.json says why)
            return []
        stream = container.streams.video[0]
        time_base = stream.time_base
        assert time_base is not None
        return sorted(float(packet.pts * time_base) for packet in container.demux(stream)
                      if packet.pts is not None)


def video_figures(folder: Path, fps: float, gap_limits: tuple[float, ...] = (0.1, 0.5),
                  ) -> VideoFigures:
    times = picture_times(folder)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    span = times[-1] - times[0] + 1 / fps if times else 0.0
    return VideoFigures(frames=len(times), expected=round(span * fps),
                        longest_gap=max(gaps, default=0.0),
                        gaps_over={limit: sum(g > limit for g in gaps) for limit in gap_limits})
