"""fMP4 writing and reading, and the Opus timeline that feeds it."""

from pathlib import Path

import pytest

from publisher_hls_agent.hls import fmp4
from publisher_hls_agent.hls.check import check_recording
from publisher_hls_agent.hls.fmp4_video import video_config, video_sample
from publisher_hls_agent.hls.opus import OpusTimeline, packet_samples
from publisher_hls_agent.inspection.mp4parse import Mp4Error, read_fragments, read_init
from publisher_hls_agent.media import h264

from .fmp4_sizes import write_size_changes
from .h264_samples import IDR, PPS, SLICE, SPS

pytestmark = pytest.mark.unit


def test_init_and_media_segment_round_trip() -> None:
    init = fmp4.init_segment(video_config("h264", h264.to_annexb([SPS, PPS, IDR]), (320, 240)),
                             fmp4.AudioConfig(2))
    tracks = read_init(init)
    assert {(t.track_id, t.handler, t.timescale, t.codec) for t in tracks.values()} == {
        (1, "vide", 90000, "avc3"), (2, "soun", 48000, "Opus")}
    key = video_sample("h264", h264.to_annexb([SPS, PPS, IDR]))
    delta = video_sample("h264", h264.to_annexb([SLICE]))
    video = fmp4.TrackRun(1, 180000, [(3000, len(key), fmp4.sample_flags(True)),
                                      (3000, len(delta), fmp4.sample_flags(False))],
                          [key, delta])
    audio = fmp4.TrackRun(2, 96000, [(960, 3, 0)] * 2, [b"\xf8\xff\xfe"] * 2)
    segment = fmp4.media_segment(7, [video, audio])
    fragments = {f.track_id: f for f in read_fragments(segment)}
    assert (fragments[1].base_time, fragments[1].durations) == (180000, [3000, 3000])
    assert fragments[1].first_sample == key
    assert (fragments[2].base_time, fragments[2].durations) == (96000, [960, 960])
    assert fragments[2].first_sample == b"\xf8\xff\xfe"


def test_video_samples_are_the_nal_units_with_lengths() -> None:
    sample = video_sample("h264", b"\x00\x00\x01" + SLICE)
    assert sample == len(SLICE).to_bytes(4, "big") + SLICE


def test_broken_boxes_are_reported_with_their_offset() -> None:
    with pytest.raises(Mp4Error, match="bad size"):
        list(read_fragments(b"\x00\x00\x00\x40moof" + bytes(8)))
    with pytest.raises(Mp4Error, match="no moov box"):
        read_init(fmp4.box(b"ftyp", b"iso6"))


@pytest.mark.parametrize(("toc", "samples"), [(0xF8, 960), (0x78, 960), (0xE0, 120),
                                              (0x00, 480), (0x18, 2880), (0xF9, 1920)])
def test_packet_durations_from_the_toc(toc: int, samples: int) -> None:
    assert packet_samples(bytes([toc, 0])) == samples


def test_code_3_packets_count_their_frames_and_empty_ones_are_refused() -> None:
    assert packet_samples(bytes([0xFB, 0x03])) == 3 * 960
    assert packet_samples(b"") == 0
    assert packet_samples(bytes([0xFB])) == 0


def test_holes_are_filled_with_silence_and_duplicates_dropped() -> None:
    timeline = OpusTimeline(channels=1)
    packet = bytes([0x78, 1, 2])  # 20 ms
    assert [(f.pts, f.duration) for f in timeline.push(packet, 0)] == [(0, 960)]
    out = timeline.push(packet, 960 * 4)  # three packets missing (DTX)
    assert [(f.pts, f.duration) for f in out] == [(960, 960), (1920, 960), (2880, 960),
                                                  (3840, 960)]
    assert all(f.data == b"\xf8\xff\xfe" for f in out[:3])
    assert timeline.push(packet, 960 * 4) == []
    assert (timeline.silence_inserted, timeline.packets_dropped) == (2880, 1)


def test_the_end_is_filled_with_silence_only_when_the_gap_is_short() -> None:
    timeline = OpusTimeline(channels=1)
    assert timeline.fill_to(960, most=960) == []  # nothing came: nothing to continue
    timeline.push(bytes([0x78, 1, 2]), 0)  # 20 ms
    assert timeline.fill_to(960 * 3, most=960) == []  # further than ``most``: left alone
    assert [(f.pts, f.duration) for f in timeline.fill_to(960 * 3, most=960 * 2)] == [
        (960, 960), (1920, 960)]
    assert timeline.fill_to(960 * 3, most=960 * 2) == []  # already there


def test_a_new_picture_size_gets_its_own_init_segment(tmp_path: Path) -> None:
    write_size_changes(tmp_path)
    playlist = (tmp_path / "playlist.m3u8").read_text()
    maps = [line for line in playlist.splitlines() if line.startswith("#EXT-X-MAP")]
    assert maps == ['#EXT-X-MAP:URI="init.mp4"', '#EXT-X-MAP:URI="init-1.mp4"',
                    '#EXT-X-MAP:URI="init.mp4"'], playlist  # back to the first: no third
    assert sorted(p.name for p in tmp_path.glob("init*")) == ["init-1.mp4", "init.mp4"]
    assert playlist.index("#EXT-X-DISCONTINUITY") < playlist.index("init-1.mp4")
    report = check_recording(tmp_path)  # every frame decoded, with its own init segment
    assert report.ok, report.render()
    assert len(report.segments) == 6


def test_check_wants_a_discontinuity_before_a_new_map(tmp_path: Path) -> None:
    write_size_changes(tmp_path)
    playlist = tmp_path / "playlist.m3u8"
    playlist.write_text(playlist.read_text().replace("#EXT-X-DISCONTINUITY\n", "", 1))
    report = check_recording(tmp_path, decode=False)
    assert any("without an EXT-X-DISCONTINUITY" in e for e in report.errors), report.errors
