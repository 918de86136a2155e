"""How an activated recorder gets the keyframe it starts on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from publisher_hls_agent.media.track import RemoteTrack
from publisher_hls_agent.recorder import recorder as recorder_module
from publisher_hls_agent.recorder.recorder import Recorder, RecorderOptions
from publisher_hls_agent.recorder.state import State

pytestmark = pytest.mark.unit


async def test_a_recorder_without_any_keyframe_keeps_asking(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first requests can reach no one (made before the track's first packet); a
    publisher that sends keyframes only when asked would otherwise never be recorded."""
    monkeypatch.setattr(recorder_module, "KEYFRAME_WAIT", 0.05)
    requests = []
    recorder = Recorder("room", "alice", RecorderOptions(
        output_dir=tmp_path, auto_activate=True, expected_kinds=frozenset({"video"})),
        request_keyframe=lambda: requests.append(asyncio.get_running_loop().time()),
        sender_report=lambda sid: None)
    recorder.on_track_started(RemoteTrack("TR_v", "video", "video/VP9", recorded_codec="vp9"))
    assert recorder.state is State.RECORDING_PENDING
    asked_at_activation = len(requests)
    await asyncio.sleep(0.5)
    assert len(requests) >= asked_at_activation + 5
    assert recorder.state is State.RECORDING_PENDING
    recorder.finalize()
    settled = len(requests)
    await asyncio.sleep(0.2)
    assert len(requests) == settled  # a finalized recorder asks no more


async def test_a_recording_that_ends_before_the_reports_came_writes_what_it_held(
        tmp_path: Path) -> None:
    """The publisher leaves 2 s after activation, before LiveKit's first sender report:
    what came from the keyframe on is written, lined up by arrival (it was thrown away,
    and the job ended "after 0 recordings")."""
    from publisher_hls_agent.hls.check import check_recording
    from publisher_hls_agent.media import h264
    from publisher_hls_agent.media.units import AccessUnit

    from .h264_samples import IDR, PPS, SLICE, SPS

    recorder = Recorder("room", "alice", RecorderOptions(
        output_dir=tmp_path, auto_activate=True, expected_kinds=frozenset({"video"}),
        segment_duration=1.0), request_keyframe=lambda: None, sender_report=lambda sid: None)
    recorder.on_track_started(RemoteTrack("TR_v", "video", "video/H264", recorded_codec="h264"))
    assert recorder.state is State.RECORDING_PENDING
    now = asyncio.get_running_loop().time()
    for index in range(60):  # 2 s at 30 fps, a keyframe each second
        keyframe = index % 30 == 0
        data = h264.to_annexb([SPS, PPS, IDR] if keyframe else [SLICE])
        recorder.on_video("TR_v", AccessUnit(data, 90_000 + 3000 * index, now + index / 30,
                                             keyframe, keyframe, False))
    assert recorder.state is State.RECORDING_PENDING  # still waiting for the reports
    summary = recorder.finalize("participant left")
    assert summary is not None and summary["aligned_by"] == "arrival times"
    assert summary["frames"]["video"] == 60 and summary["duration"] == pytest.approx(2.0)
    report = check_recording(tmp_path / summary["folder"])
    assert report.ok, report.render()
