"""Where a recording's flashes and beeps fall, in its media time: the publishers (the
SDK one, ``synthetic_media.py``; Chromium playing ``capture_files.py``) flash white and
beep at the same instants, so each flash's distance to its beep is the A/V offset the
whole chain left."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from .synthetic_media import WHITE


def flash_times(path: Path, white: int = WHITE - 20) -> list[float]:
    """Times of the pictures brighter than ``white`` on average, and of only the first
    of several in a row (a flash may last a few frames)."""
    times, previous = [], False
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            bright = frame.to_ndarray(format="gray")[::8, ::8].mean() > white
            if bright and not previous and frame.time is not None:
                times.append(frame.time)
            previous = bright
    return times


def beep_times(path: Path) -> list[float]:
    """Onsets of the 1 kHz beeps: where the 2 ms loudness first crosses half scale."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks, start = [], None
        for frame in container.decode(stream):
            if start is None:
                start = frame.time
            chunks.append(frame.to_ndarray().mean(axis=0))
    samples = np.concatenate(chunks)
    window = 96
    loudness = np.abs(samples[: len(samples) // window * window]).reshape(-1, window).max(axis=1)
    loud = loudness > 0.25
    onsets = [i for i in range(1, len(loud)) if loud[i] and not loud[max(0, i - 25):i].any()]
    assert start is not None
    return [start + i * window / 48000 for i in onsets]


def offsets(flashes: list[float], beeps: list[float]) -> list[float]:
    """Each flash's nearest beep, minus the flash (positive: the sound comes late)."""
    if not beeps:
        return []
    return [min(beeps, key=lambda beep: abs(beep - flash)) - flash for flash in flashes]


def either_side_of_the_move(flashes: list[float], found: list[float],
                            summary: dict[str, object]) -> list[list[float]]:
    """The offsets (one per flash) before and after the audio's one move, if the
    recording made one (``recording.json``'s ``audio_moved``: begun by arrival times,
    moved when the sender reports came). On either side the offset must hold still."""
    moved = summary.get("audio_moved")
    at = float(moved["at"]) if isinstance(moved, dict) else 0.0
    pairs = list(zip(flashes, found, strict=True))
    return [side for side in ([o for f, o in pairs if f < at], [o for f, o in pairs if f >= at])
            if side]
