"""The recording session's own rules, with no server (its room client never runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher_hls_agent.recorder.options import RecorderOptions
from publisher_hls_agent.worker.session import RecordingSession

pytestmark = pytest.mark.unit


async def test_the_first_reason_to_stop_is_the_one_the_recording_keeps(tmp_path: Path) -> None:
    """A worker's SIGTERM ends every session ("agent shutting down"); each leaves its
    room, and the server then terminates the job: that second stop must not rename why
    the recording ended (busy21)."""
    session = RecordingSession("ws://127.0.0.1:9", "token", "room", "alice",
                               RecorderOptions(tmp_path), answer_rpc=False)
    assert session.stop_reason == "participant left"
    await session.stop("agent shutting down")
    await session.stop("job terminated by the server")
    assert session.stop_reason == "agent shutting down"
