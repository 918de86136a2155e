"""``publisher-hls-agent fix`` on broken recordings made for real by FFmpeg, judged by
ffprobe and by ``check``."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from publisher_hls_agent.hls.check import check_recording, parse_playlist
from publisher_hls_agent.inspection.tsparse import Program, read_pes

pytestmark = pytest.mark.integration

WRAP = 1 << 33
TICKS = 90000


def ffmpeg_hls(folder: Path, seconds: int = 8, offset: float | None = None) -> Path:
    folder.mkdir(parents=True)
    shift = ["-output_ts_offset", f"{offset}"] if offset is not None else []
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac", "-f", "hls",
         "-hls_time", "2", "-hls_list_size", "0", *shift, str(folder / "index.m3u8")],
        check=True)
    return folder / "index.m3u8"


def fix(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "publisher_hls_agent", "fix", *arguments],
                          capture_output=True, text=True)


def raw_timestamps(folder: Path) -> list[int]:
    """Every PTS and DTS of every segment, in order, as the bytes say (no wrap logic)."""
    values = []
    for entry in parse_playlist((folder / "index.m3u8").read_text()).entries:
        for pes in read_pes((folder / entry.uri).read_bytes(), Program()):
            values += [v for v in (pes.pts, pes.dts) if v is not None]
    return values


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def ffprobe_first_pts(segment: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "packet=pts_time",
                          "-of", "csv=p=0", str(segment)], capture_output=True, text=True,
                         check=True).stdout.split()
    return min(float(value.strip(",")) for value in out if value.strip(","))


def test_a_recording_across_the_33_bit_wrap_starts_at_zero(tmp_path: Path) -> None:
    playlist = ffmpeg_hls(tmp_path / "in", offset=WRAP / TICKS - 3)
    before = raw_timestamps(tmp_path / "in")
    assert max(before) > WRAP - 4 * TICKS and min(before) < 4 * TICKS  # it does wrap
    untouched = digest(tmp_path / "in")
    result = fix(str(playlist), "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "timestamps shifted by" in result.stdout
    assert digest(tmp_path / "in") == untouched, "--output changed the input"
    after = raw_timestamps(tmp_path / "out")
    assert len(after) == len(before)
    offset = (before[0] - after[0]) % WRAP
    assert all((b - a) % WRAP == offset for b, a in zip(before, after, strict=True))
    assert max(after) < 10 * TICKS  # no wrap left
    assert ffprobe_first_pts(tmp_path / "out" / "index0.ts") < 2.0
    assert check_recording(tmp_path / "out" / "index.m3u8").ok


def test_gstreamers_bogus_last_duration_is_replaced_by_the_true_one(tmp_path: Path) -> None:
    """hlssink ends a recording with ``#EXTINF:18446743552.0000,`` (a negative duration
    in nanoseconds read as unsigned); its target duration follows suit."""
    playlist = ffmpeg_hls(tmp_path / "in", seconds=7)
    lines = playlist.read_text().splitlines()
    last = max(i for i, line in enumerate(lines) if line.startswith("#EXTINF"))
    lines[last] = "#EXTINF:18446743552.0000,"
    lines = [("#EXT-X-TARGETDURATION:18446743552" if line.startswith("#EXT-X-TARGETDURATION")
              else line) for line in lines]
    playlist.write_text("\n".join(lines) + "\n")
    result = fix(str(tmp_path / "in"), "--in-place")
    assert result.returncode == 0, result.stderr
    assert "EXTINF 1.84467e+10 -> 1.0" in result.stdout
    fixed = parse_playlist(playlist.read_text())
    assert fixed.entries[-1].duration == pytest.approx(1.0, abs=1 / 30)
    assert fixed.target_duration == 2
    assert all(round(e.duration) <= 2 for e in fixed.entries)
    backups = list((tmp_path / "in").glob(".fix-backup-*"))
    assert len(backups) == 1 and "18446743552.0000" in (backups[0] / "index.m3u8").read_text()
    assert check_recording(playlist).ok


def test_in_place_without_backup_and_refusals(tmp_path: Path) -> None:
    playlist = ffmpeg_hls(tmp_path / "in", seconds=4)
    assert fix(str(playlist), "--in-place", "--no-backup").returncode == 0
    assert not list((tmp_path / "in").glob(".fix-backup-*"))
    assert fix(str(playlist), "--output", str(tmp_path / "in")).returncode == 2
    text = tmp_path / "text"
    text.mkdir()
    (text / "index.m3u8").write_text("#EXTM3U\n#EXTINF:1,\nnot-ts.ts\n")
    (text / "not-ts.ts").write_text("hello, this is not MPEG-TS" * 20)
    refused = fix(str(text), "--output", str(tmp_path / "o"))
    assert refused.returncode == 2 and "not MPEG-TS" in refused.stderr
    (text / "index.m3u8").write_text("#EXTM3U\n#EXTINF:1,\n../../etc/passwd\n")
    escaped = fix(str(text), "--output", str(tmp_path / "o"))
    assert escaped.returncode == 2 and "outside the playlist's folder" in escaped.stderr
