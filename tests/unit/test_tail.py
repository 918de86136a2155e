"""Held segments (hls/tail.py): frozen picture and silence wait to see whether the
publisher comes back, and are cut from the end of a recording when it does not."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher_hls_agent.hls.mpegts import Streams
from publisher_hls_agent.hls.tail import Mark, Pending, TailHold
from publisher_hls_agent.hls.writer import TsHlsWriter
from publisher_hls_agent.media import h264

from .h264_samples import IDR, PPS, SLICE, SPS

pytestmark = pytest.mark.unit

S = 90_000  # one second


def segment(sequence: int, start: float, end: float, real_until: float | None) -> Pending:
    real = None if real_until is None else Mark(f"at {real_until}", round(real_until * S))
    return Pending(sequence, round(start * S), round(end * S), False, None, sequence, real)


def hold() -> TailHold:
    tail = TailHold(tolerance=S * 7 // 10, limit=30 * S)
    tail.active = True
    return tail


def test_segments_of_real_media_are_published_at_once() -> None:
    tail = hold()
    assert tail.close(segment(0, 0, 2, 2.0)) == [segment(0, 0, 2, 2.0)]
    assert tail.close(segment(1, 2, 4, 3.5)) == [segment(1, 2, 4, 3.5)]  # within tolerance


def test_nothing_is_held_before_the_first_real_media() -> None:
    tail = TailHold(tolerance=S, limit=30 * S)  # a writer no one marks
    assert tail.close(segment(0, 0, 2, None)) == [segment(0, 0, 2, None)]
    assert tail.finish(segment(1, 2, 3, None)) == [segment(1, 2, 3, None)]
    assert tail.trimmed == 0


def test_a_pause_is_published_as_it_was_once_real_media_comes_back() -> None:
    tail = hold()
    tail.close(segment(0, 0, 2, 2.0))
    assert tail.close(segment(1, 2, 4, 2.5)) == []
    assert tail.close(segment(2, 4, 6, None)) == []
    assert [s.sequence for s in tail.close(segment(3, 6, 8, 8.0))] == [1, 2, 3]
    assert tail.finish(None) == [] and tail.trimmed == 0


def test_the_end_is_cut_where_the_real_media_ends() -> None:
    tail = hold()
    tail.close(segment(0, 0, 2, 2.0))
    tail.close(segment(1, 2, 4, 2.5))
    tail.close(segment(2, 4, 6, None))
    published = tail.finish(segment(3, 6, 7, None))
    assert [(s.sequence, s.end, s.trimmed) for s in published] == [(1, round(2.5 * S), True)]
    assert tail.trimmed == round(4.5 * S)


def test_the_open_segment_is_cut_when_its_real_media_ended_early() -> None:
    tail = hold()
    tail.close(segment(0, 0, 2, 2.0))
    published = tail.finish(segment(1, 2, 3.9, 2.4))
    assert [(s.sequence, s.end, s.trimmed) for s in published] == [(1, round(2.4 * S), True)]
    assert tail.trimmed == round(1.5 * S)


def test_segments_after_the_last_published_real_media_are_dropped() -> None:
    tail = hold()
    tail.close(segment(0, 0, 2, 2.0))
    tail.close(segment(1, 2, 4, None))
    assert tail.finish(segment(2, 4, 5, None)) == []
    assert tail.trimmed == 3 * S


def test_a_long_pause_is_published_as_it_goes_on() -> None:
    tail = hold()
    tail.close(segment(0, 0, 2, 2.0))
    published = []
    for index in range(1, 20):
        published += tail.close(segment(index, 2 * index, 2 * index + 2, None))
    # Past 30 s held, the pause is published: segments 1-16 (2 s to 34 s).
    assert [s.sequence for s in published] == list(range(1, 17))
    assert tail.finish(segment(20, 40, 41, None)) == []
    assert tail.trimmed == 7 * S  # 17-19 and the last: only what came after is cut


def test_the_real_media_ends_at_the_latest_end_marked(tmp_path: Path) -> None:
    """At the end the interleaver flushes one stream after the other: the video's last
    frames, then audio that ends before them. The segment ends after the video."""
    writer = TsHlsWriter(tmp_path, Streams(video=True, audio=False), segment_duration=2.0,
                         max_segments=0, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    writer.start_segment(0)
    for index in range(30):
        writer.write_video(h264.to_annexb([SPS, PPS, IDR] if index == 0 else [SLICE]),
                           index * 3000, index == 0)
        writer.mark_real((index + 1) * 3000)
    writer.mark_real(20 * 3000)  # audio, flushed after the video, ending before it
    writer.finish(30 * 3000)
    assert writer.trimmed == 0
    assert writer.end_pts == 30 * 3000
