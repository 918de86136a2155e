"""The inspection package: one playlist reader for ``check`` (strict) and ``fix``
(forgiving, line-preserving), and one duration measure for both."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher_hls_agent.hls.check import CheckError, parse_playlist
from publisher_hls_agent.hls.check_segments import measure_ts
from publisher_hls_agent.inspection.durations import (
    ANY_STREAMS,
    OUR_STREAMS,
    frame_steps,
    media_span,
    read_segment,
    segment_duration,
)
from publisher_hls_agent.inspection.playlist import MediaPlaylist, PlaylistError
from publisher_hls_agent.repair.playlist_fix import editable_playlist, written_target

from .test_check import make_recording

pytestmark = pytest.mark.unit

BROKEN = """#EXTM3U
#EXT-X-TARGETDURATION:2
#EXTINF:two,
a.ts
b.ts
#EXT-X-MAP:BYTERANGE=1
"""


def test_one_reading_noted_for_fix_and_refused_by_check() -> None:
    playlist = MediaPlaylist.parse(BROKEN)
    assert [(e.uri, e.duration, e.extinf_line) for e in playlist.entries] == [
        ("a.ts", None, 2), ("b.ts", None, None)]
    assert playlist.problems == ["'#EXTINF:two,': 'two' is not a number",
                                 "segment b.ts has no #EXTINF",
                                 "'#EXT-X-MAP:BYTERANGE=1' has no URI"]
    with pytest.raises(PlaylistError, match="'two' is not a number"):
        MediaPlaylist.parse(BROKEN, strict=True)
    with pytest.raises(CheckError, match="'two' is not a number"):
        parse_playlist(BROKEN)
    assert editable_playlist(BROKEN).render() == BROKEN  # fix takes it, line for line


def test_the_tags_check_reads() -> None:
    playlist = parse_playlist('\n#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXT-X-MAP:URI="init.mp4"\n'
                              "#EXTINF:2.5,\ns0.m4s\n#EXT-X-DISCONTINUITY\n#EXTINF:1,\ns1.m4s\n"
                              "#EXT-X-ENDLIST\n")
    assert (playlist.target_duration, playlist.init_uri, playlist.ended) == (3, "init.mp4", True)
    assert [(e.uri, e.duration, e.discontinuity) for e in playlist.entries] == [
        ("s0.m4s", 2.5, False), ("s1.m4s", 1.0, True)]
    assert playlist.header_line == 1  # check allows blank lines before #EXTM3U; fix does not
    with pytest.raises(PlaylistError, match="first line"):
        editable_playlist("\n#EXTM3U\n#EXTINF:1,\na.ts\n")


def test_a_target_duration_fix_replaces_is_reported_as_it_was_written() -> None:
    playlist = editable_playlist("#EXTM3U\n#EXT-X-TARGETDURATION:3,4\n#EXTINF:1,\na.ts\n")
    assert playlist.target_duration == 3  # check reads up to the comma
    assert written_target(playlist) is None  # fix says it replaced no target duration
    assert playlist.fit_target_duration() == 1
    assert playlist.render() == "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\na.ts\n"


def test_a_missing_target_duration_goes_right_after_the_header() -> None:
    playlist = editable_playlist("#EXTM3U\na.ts\n")
    playlist.set_duration(playlist.entries[0], 1.25)
    assert playlist.fit_target_duration() == 1
    assert playlist.render() == "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.250000,\na.ts\n"
    assert (playlist.entries[0].line, playlist.entries[0].extinf_line) == (3, 2)


def test_check_and_fix_measure_a_segment_alike(tmp_path: Path) -> None:
    make_recording(tmp_path, 2.0)
    data = (tmp_path / "segment00000.ts").read_bytes()
    facts = measure_ts("segment00000.ts", 2.0, data)
    assert facts.real is not None and facts.errors == []
    measured = segment_duration(data)
    assert measured == pytest.approx((2.0, 1 / 30))  # fix lets video decide
    assert measured is not None and abs(facts.real - measured[0]) <= facts.frame  # check: all


def test_the_span_runs_to_the_end_of_the_last_frame_of_any_stream() -> None:
    times = {"video": [0, 3000, 6000], "audio": [0, 1920, 3840, 5760]}
    steps = frame_steps(times)
    assert steps == {"video": 3000, "audio": 1920}
    span = media_span(times, steps)
    assert span is not None and (span.start, span.end, span.frame) == (0, 9000, 3000)
    # one frame alone lasts as long as its stream's frames before
    assert frame_steps({"video": [9000]}, {"video": 3000}) == {"video": 3000}
    assert media_span({}, {}) is None


def test_a_broken_segment_keeps_what_came_before_the_damage(tmp_path: Path) -> None:
    make_recording(tmp_path, 2.0)
    data = (tmp_path / "segment00000.ts").read_bytes()
    cut = data[:188 * 200] + b"\x00" * 188
    segment = read_segment(cut, ANY_STREAMS)
    assert segment.error is not None and "no sync byte" in str(segment.error)
    assert segment.tables_first and segment.times["video"]
    assert read_segment(cut, OUR_STREAMS).times == segment.times
