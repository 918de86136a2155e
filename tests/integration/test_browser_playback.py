"""Recordings played by hls.js (npm, pinned) in headless Chromium (Debian's package),
over loopback HTTP: the manifest parses, every fragment is buffered, no fatal error,
playback reaches the end, the duration matches the playlist, frames are decoded."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher_hls_agent.hls.check import parse_playlist
from publisher_hls_agent.recorder.recorder import RecorderOptions
from publisher_hls_agent.testbed.browser import chromium
from publisher_hls_agent.testbed.livekit_server import LiveKitServer
from publisher_hls_agent.testbed.web_server import serving

from .support import publishing, record_for

pytestmark = pytest.mark.integration


async def record(server: LiveKitServer, output: Path, room: str, keep_opus: bool) -> Path:
    async with publishing(server, room, "player", width=640, height=360):
        summary = await record_for(server, room, "player", 8, RecorderOptions(
            output_dir=output, keep_opus=keep_opus, auto_activate=True, segment_duration=1.0))
    return Path(summary["folder"])


@pytest.mark.parametrize("keep_opus", [False, True], ids=["ts-aac", "fmp4-opus"])
async def test_hls_js_plays_the_recording_to_the_end(livekit_server: LiveKitServer,
                                                     tmp_path: Path, keep_opus: bool) -> None:
    folder = await record(livekit_server, tmp_path, f"play-{keep_opus}", keep_opus)
    playlist = parse_playlist((folder / "playlist.m3u8").read_text())
    extinf_sum = sum(entry.duration for entry in playlist.entries)
    async with serving(tmp_path) as url, chromium() as page:
        await page.goto(f"{url}/player.html")
        codecs = await page.evaluate("codecs()")
        needed = ["hls", "h264", "opus" if keep_opus else "aac"]
        missing = [name for name in needed if not codecs[name]]
        assert not missing, f"this Chromium cannot play {missing} through Media Source"
        result = await page.evaluate(
            f"play('{url}/rec/{folder.name}/playlist.m3u8', {int(extinf_sum * 1000) + 8000})")
        await page.screenshot(tmp_path / "playing.png")
    assert result["parsed"] and result["fatal"] is None, result
    assert result["fragments"] == len(playlist.entries)
    assert result["buffered"] >= len(playlist.entries), result
    assert result["ended"] or result["currentTime"] >= result["duration"] - 0.1, result
    frame = 1 / 30
    assert abs(result["duration"] - extinf_sum) <= frame * len(playlist.entries), \
        (result["duration"], extinf_sum)
    assert 0 < result["framesMidway"] < result["frames"], result
    assert result["frames"] >= 0.8 * 30 * extinf_sum, result
