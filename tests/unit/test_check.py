"""``check`` against recordings made by the writer, then broken on purpose."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher_hls_agent.hls.aac import adts_header
from publisher_hls_agent.hls.audio import AudioFrame
from publisher_hls_agent.hls.check import CheckError
from publisher_hls_agent.hls.mpegts import Streams
from publisher_hls_agent.hls.writer import TsHlsWriter
from publisher_hls_agent.media import h264

from .h264_samples import IDR, PPS, SLICE, SPS
from .structure import check_structure

pytestmark = pytest.mark.unit

KEY = h264.to_annexb([SPS, PPS, IDR])
DELTA = h264.to_annexb([SLICE])
AAC = adts_header(10, 1) + bytes(10)


def make_recording(folder: Path, seconds: float = 6.0, *, gap_at: int | None = None,
                   max_segments: int = 0) -> TsHlsWriter:
    """30 fps video with a keyframe every second, AAC audio, 2 s segments."""
    writer = TsHlsWriter(folder, Streams(video=True, audio=True), segment_duration=2.0,
                         max_segments=max_segments, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    frames = int(seconds * 30)
    audio_pts = 0  # 48 kHz
    shift = 0
    for index in range(frames):
        if gap_at is not None and index == gap_at:
            shift = 90000  # a one-second jump in the timeline
        pts = index * 3000 + shift
        keyframe = index % 30 == 0
        if keyframe and index % 60 == 0:
            writer.start_segment(pts)
        writer.write_video(KEY if keyframe else DELTA, pts, keyframe)
        while audio_pts * 15 // 8 < pts + 3000 - shift:
            writer.write_audio(AudioFrame(AAC, audio_pts + shift * 8 // 15, 1024))
            audio_pts += 1024
    writer.finish(frames * 3000 + shift)
    return writer


def playlist(folder: Path) -> Path:
    return folder / "playlist.m3u8"


def test_a_good_recording_passes(tmp_path: Path) -> None:
    make_recording(tmp_path)
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    assert [round(s.extinf, 3) for s in report.segments] == [2.0, 2.0, 2.0]
    assert report.render().endswith("OK: 3 segments, 6.000 s, 0 errors, 0 warnings")


def test_a_recording_still_running_needs_live(tmp_path: Path) -> None:
    make_recording(tmp_path)
    text = playlist(tmp_path).read_text().replace("#EXT-X-ENDLIST\n", "")
    playlist(tmp_path).write_text(text)
    assert "no #EXT-X-ENDLIST" in check_structure(tmp_path).render()
    assert check_structure(tmp_path, require_end=False).ok


def test_wrong_extinf_is_caught_even_for_the_last_segment(tmp_path: Path) -> None:
    make_recording(tmp_path)
    text = playlist(tmp_path).read_text()
    last = text.rfind("#EXTINF:2.000000,")
    playlist(tmp_path).write_text(text[:last] + "#EXTINF:2.100000," + text[last + 17:])
    report = check_structure(tmp_path)
    assert not report.ok
    assert any("segment00002.ts: EXTINF 2.100 but the media spans 2.0" in e
               for e in report.errors), report.errors


def test_bogus_final_duration_and_target_duration(tmp_path: Path) -> None:
    make_recording(tmp_path)
    text = playlist(tmp_path).read_text()
    last = text.rfind("#EXTINF:2.000000,")
    playlist(tmp_path).write_text(text[:last] + "#EXTINF:18446743552.0000," + text[last + 17:])
    errors = check_structure(tmp_path).errors
    assert any("rounds above TARGETDURATION 3" in e for e in errors)


def test_segment_without_pat_pmt_first(tmp_path: Path) -> None:
    make_recording(tmp_path)
    segment = tmp_path / "segment00001.ts"
    data = segment.read_bytes()
    segment.write_bytes(data[2 * 188:])  # drop PAT and PMT
    errors = check_structure(tmp_path).errors
    assert any("segment00001.ts" in e for e in errors), errors


def test_segment_that_does_not_start_on_a_keyframe(tmp_path: Path) -> None:
    writer = TsHlsWriter(tmp_path, Streams(video=True, audio=False), segment_duration=2.0,
                         max_segments=0, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    writer.start_segment(0)
    writer.write_video(DELTA, 0, False)
    writer.write_video(KEY, 3000, True)
    writer.finish(6000)
    errors = check_structure(tmp_path).errors
    assert any("does not start with SPS, PPS and an IDR (starts P)" in e for e in errors), errors


def test_timestamp_jump_needs_a_discontinuity(tmp_path: Path) -> None:
    make_recording(tmp_path, gap_at=120)  # where the third segment starts
    errors = check_structure(tmp_path).errors
    assert any("segment00001.ts: its media ends 0.9" in e for e in errors), errors
    # The same jump, declared: a DISCONTINUITY and the segment's own duration.
    text = playlist(tmp_path).read_text().replace("#EXTINF:3.000000,\nsegment00001",
                                                  "#EXTINF:2.000000,\nsegment00001")
    text = text.replace("segment00001.ts\n#EXT-X-PROGRAM", "segment00001.ts\n"
                        "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM")
    playlist(tmp_path).write_text(text)
    report = check_structure(tmp_path)
    assert report.ok, report.render()


def test_missing_segment_and_not_a_playlist(tmp_path: Path) -> None:
    make_recording(tmp_path)
    (tmp_path / "segment00001.ts").unlink()
    assert "segment00001.ts: named in the playlist but missing" in check_structure(
        tmp_path).errors
    playlist(tmp_path).write_text("hello\n")
    with pytest.raises(CheckError, match="not an HLS playlist"):
        check_structure(tmp_path)
    with pytest.raises(CheckError, match="cannot read"):
        check_structure(tmp_path / "nowhere")


def test_sliding_window_keeps_n_segments_and_output_ts_keeps_all(tmp_path: Path) -> None:
    make_recording(tmp_path, seconds=10, max_segments=2)
    text = playlist(tmp_path).read_text()
    assert "#EXT-X-MEDIA-SEQUENCE:3" in text and "PLAYLIST-TYPE" not in text
    assert sorted(p.name for p in tmp_path.glob("segment*.ts")) == ["segment00003.ts",
                                                                    "segment00004.ts"]
    assert check_structure(tmp_path).ok
    assert (tmp_path / "output.ts").stat().st_size > 4 * (tmp_path / "segment00004.ts").stat(
        ).st_size


def test_a_last_segment_of_one_frame_is_measured_with_the_frames_before(
        tmp_path: Path) -> None:
    make_recording(tmp_path, seconds=6.0 + 1 / 30)  # frame 180 is a keyframe: a new segment
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    assert round(report.segments[-1].extinf, 3) == 0.033
