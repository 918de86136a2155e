"""Crafted and broken recordings: check reads them in bounded time and memory, and says
what is wrong in its own words (issue 16, items 5 and 6). Each case failed before:
hung, ran out of memory, or raised IndexError/ValueError/ZeroDivisionError."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest

from publisher_hls_agent.hls import fmp4
from publisher_hls_agent.hls.check import CheckError, check_recording
from publisher_hls_agent.hls.fmp4_video import video_config
from publisher_hls_agent.inspection.mp4parse import Mp4Error, read_fragments, read_init
from publisher_hls_agent.inspection.tsparse import TsError, read_pes
from publisher_hls_agent.media import h264

from .h264_samples import IDR, PPS, SPS
from .test_check import make_recording

pytestmark = pytest.mark.unit


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack("!I", 8 + len(payload)) + kind + payload


def test_a_trun_claiming_four_billion_samples_is_refused_at_once() -> None:
    trun = box(b"trun", struct.pack("!II", 0, 0xFFFFFFFF))  # flags 0: nothing per sample
    traf = box(b"traf", box(b"tfhd", struct.pack("!II", 0, 1))
               + box(b"tfdt", struct.pack("!II", 0, 0)) + trun)
    segment = box(b"moof", box(b"mfhd", bytes(8)) + traf) + box(b"mdat", b"")
    start = time.perf_counter()
    with pytest.raises(Mp4Error, match="samples"):
        list(read_fragments(segment))
    assert time.perf_counter() - start < 1


def test_a_timescale_of_zero_is_an_error_not_a_division() -> None:
    init = bytearray(fmp4.init_segment(
        video_config("h264", h264.to_annexb([SPS, PPS, IDR]), (320, 240)), None))
    at = init.index(b"mdhd") + 4 + 12  # version 0: size, type, then 12 bytes to timescale
    init[at:at + 4] = bytes(4)
    with pytest.raises(Mp4Error, match="timescale"):
        read_init(bytes(init))


def write_playlist(folder: Path, *lines: str) -> Path:
    path = folder / "playlist.m3u8"
    path.write_text("\n".join(["#EXTM3U", "#EXT-X-TARGETDURATION:3", *lines]) + "\n")
    return path


@pytest.mark.parametrize("lines", [("#EXT-X-MAP:BYTERANGE=1", "#EXTINF:2,", "s.m4s"),
                                   ("#EXTINF:nan,", "s.ts"), ("#EXTINF:1e309,", "s.ts"),
                                   ("#EXTINF:two,", "s.ts")])
def test_unreadable_playlist_lines_are_check_errors(tmp_path: Path, lines: tuple[str, ...]) -> None:
    write_playlist(tmp_path, *lines, "#EXT-X-ENDLIST")
    with pytest.raises(CheckError):
        check_recording(tmp_path)


def test_a_playlist_naming_a_device_reads_nothing_of_it(tmp_path: Path) -> None:
    write_playlist(tmp_path, "#EXTINF:2,", "/dev/zero", "#EXTINF:2,", "a\x00b.ts",
                   "#EXTINF:2,", "x" * 300 + ".ts", "#EXT-X-ENDLIST")
    start = time.perf_counter()
    report = check_recording(tmp_path)
    assert time.perf_counter() - start < 1
    assert not report.ok
    assert any("/dev/zero: not a regular file" in e for e in report.errors), report.errors
    assert len(report.errors) >= 3, report.errors


def test_a_playlist_that_is_a_device_is_refused(tmp_path: Path) -> None:
    os.symlink("/dev/zero", tmp_path / "playlist.m3u8")
    with pytest.raises(CheckError, match="not a regular file"):
        check_recording(tmp_path)


def ts_packet(pid: int, payload: bytes, start: bool = True) -> bytes:
    header = bytes([0x47, (0x40 if start else 0) | (pid >> 8), pid & 0xFF, 0x10])
    return header + payload + b"\xff" * (184 - len(payload))


def test_a_pat_with_a_section_of_length_zero_is_a_ts_error() -> None:
    pat = bytes([0, 0x00, 0xB0, 0x00])  # pointer, table id, section length 0
    with pytest.raises(TsError, match="PSI section"):
        list(read_pes(ts_packet(0, pat)))


def test_a_pes_too_short_for_its_pts_is_a_ts_error(tmp_path: Path) -> None:
    make_recording(tmp_path, 2.0)
    data = bytearray((tmp_path / "segment00000.ts").read_bytes())
    # keep PAT and PMT, then one video packet whose PES header claims a PTS it lacks
    video_pid = next(((data[o + 1] & 0x1F) << 8) | data[o + 2]
                     for o in range(376, len(data), 188) if data[o + 1] & 0x40)
    pes = b"\x00\x00\x01\xe0\x00\x00\x80\x80\x05"  # 9 bytes, PTS flag, no PTS
    stuffing = 183 - len(pes)  # an adaptation field pads the packet to 188 bytes
    crafted = bytes(data[:376]) + bytes([0x47, 0x40 | (video_pid >> 8), video_pid & 0xFF,
                                         0x30, stuffing, 0x00]) + b"\xff" * (stuffing - 1) + pes
    with pytest.raises(TsError, match="PES header"):
        list(read_pes(crafted))


@pytest.mark.parametrize("sample", [b"\x0a\x0b", b"\x0a\x80", b"\x0a\x00\x32\x00"])
def test_broken_av1_samples_are_reported_not_raised(tmp_path: Path, sample: bytes) -> None:
    """A sequence header OBU that runs past its sample, a leb128 cut short, an empty
    sequence header before a frame."""
    from .encoded_video import encode

    [keyframe, *_] = encode("libsvtav1", 1, options={"preset": "12"})
    init = fmp4.init_segment(video_config("av1", keyframe, (320, 240)), None)
    segment = fmp4.media_segment(1, [fmp4.TrackRun(1, 0, [(3000, len(sample),
                                                             fmp4.sample_flags(True))],
                                                   [sample])])
    (tmp_path / "init.mp4").write_bytes(init)
    (tmp_path / "segment00000.m4s").write_bytes(segment)
    write_playlist(tmp_path, '#EXT-X-MAP:URI="init.mp4"', "#EXTINF:0.033,",
                   "segment00000.m4s", "#EXT-X-ENDLIST")
    report = check_recording(tmp_path)
    assert not report.ok and any("av01" in e for e in report.errors), report.errors
