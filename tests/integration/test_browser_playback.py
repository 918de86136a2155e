"""Recordings of the synthetic publisher played by hls.js in Chromium: TS segments with
AAC, and fMP4 segments with Opus (``KEEP_OPUS``); and an fMP4 recording whose picture
size changes, with an init segment per size."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from testbed.livekit_server import LiveKitServer

from publisher_hls_agent.recorder.options import RecorderOptions

from ..unit.fmp4_sizes import write_size_changes
from .playback import assert_plays_to_the_end
from .support import publishing, record_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("keep_opus", [False, True], ids=["ts-aac", "fmp4-opus"])
async def test_hls_js_plays_the_recording_to_the_end(livekit_server: LiveKitServer,
                                                     tmp_path: Path, keep_opus: bool) -> None:
    room = f"play-{keep_opus}"
    async with publishing(livekit_server, room, "player", width=640, height=360):
        summary = await record_for(livekit_server, room, "player", 8, RecorderOptions(
            output_dir=tmp_path, keep_opus=keep_opus, auto_activate=True, segment_duration=1.0))
    await assert_plays_to_the_end(Path(summary["folder"]), audio="opus" if keep_opus else "aac")


async def test_hls_js_plays_across_a_new_init_segment(tmp_path: Path) -> None:
    """An fMP4 recording whose H.264 picture size changes (320x240, 640x360, 320x240),
    each size after a DISCONTINUITY with its own EXT-X-MAP: played to the end."""
    folder = tmp_path / "sizes"
    folder.mkdir()
    await asyncio.to_thread(write_size_changes, folder)
    await assert_plays_to_the_end(folder, audio="opus")
