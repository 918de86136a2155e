"""How an activated recorder gets the keyframe it starts on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from publisher_hls_agent.recorder import recorder as recorder_module
from publisher_hls_agent.recorder.recorder import Recorder, RecorderOptions
from publisher_hls_agent.recorder.state import State
from publisher_hls_agent.room.tracks import RemoteTrack

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
