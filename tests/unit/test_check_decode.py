"""``check`` decodes what it checks: a recording whose structure is right and whose
frames are not media (ciphertext, say: an encrypted room recorded without its key)
is an error; ``decode=False`` (``check --no-decode``) sees the structure only."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher_hls_agent.hls.check import check_recording
from publisher_hls_agent.hls.mpegts import Streams
from publisher_hls_agent.hls.writer import TsHlsWriter
from publisher_hls_agent.media import h264

from .encoded_video import FRAME_TICKS, encode

pytestmark = pytest.mark.unit

X264 = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}


def scrambled(access_unit: bytes) -> bytes:
    """The slices' bytes after their first two replaced by noise, as end-to-end
    encryption leaves them: NAL headers, parameter sets and structure intact."""
    nals = []
    for nal in h264.split_annexb(access_unit):
        if nal[0] & 0x1F in (1, 5):
            noise = os.urandom(len(nal) - 2).replace(b"\x00\x00", b"\x00\x01")
            nal = nal[:2] + noise
        nals.append(nal)
    return h264.to_annexb(nals)


def write_recording(folder: Path, units: list[bytes]) -> None:
    writer = TsHlsWriter(folder, Streams(video=True, audio=False), segment_duration=1.0,
                         max_segments=0,
                         started_at=datetime(2026, 1, 1, tzinfo=UTC))
    for index, unit in enumerate(units):
        keyframe = index % 30 == 0
        if keyframe:
            writer.start_segment(index * FRAME_TICKS)
        writer.write_video(unit, index * FRAME_TICKS, keyframe)
    writer.finish(len(units) * FRAME_TICKS)


def test_real_media_decodes(tmp_path: Path) -> None:
    write_recording(tmp_path, encode("libx264", 90, keyframe_every=30, options=X264))
    report = check_recording(tmp_path)
    assert report.ok, report.render()


def test_frames_that_do_not_decode_are_an_error_whatever_the_structure(tmp_path: Path) -> None:
    units = encode("libx264", 90, keyframe_every=30, options=X264)
    write_recording(tmp_path, [scrambled(unit) for unit in units])
    assert check_recording(tmp_path, decode=False).ok
    report = check_recording(tmp_path)
    assert not report.ok
    assert len(report.errors) == 3, report.render()  # every segment
    assert all("do not decode (h264)" in error for error in report.errors), report.errors
