"""A recording played by hls.js (npm, pinned) in headless Chromium (Debian's package),
over loopback HTTP, and what a viewer would need of it: the manifest parses, every
fragment is buffered, no fatal error, playback reaches the end, the duration matches
the playlist, frames are decoded all along."""

from __future__ import annotations

from pathlib import Path

from testbed.browser import chromium
from testbed.web_server import serving

from publisher_hls_agent.hls.check import parse_playlist


async def assert_plays_to_the_end(folder: Path, *, audio: str, fps: float = 30,
                                  video: str = "h264") -> None:
    """``folder`` (a recording) plays to its end; ``audio``: "aac" or "opus"; ``video``:
    "h264", "vp9" or "av1"."""
    playlist = parse_playlist((folder / "playlist.m3u8").read_text())
    extinf_sum = sum(entry.duration for entry in playlist.entries)
    async with serving(folder.parent) as url, chromium() as page:
        await page.goto(f"{url}/player.html")
        codecs = await page.evaluate("codecs()")
        missing = [name for name in ("hls", video, audio) if not codecs[name]]
        assert not missing, f"this Chromium cannot play {missing} through Media Source"
        result = await page.evaluate(
            f"play('{url}/rec/{folder.name}/playlist.m3u8', {int(extinf_sum * 1000) + 8000})")
        await page.screenshot(folder.parent / f"{folder.name}-playing.png")
    assert result["parsed"] and result["fatal"] is None, result
    assert result["fragments"] == len(playlist.entries)
    assert result["buffered"] >= len(playlist.entries), result
    assert result["ended"] or result["currentTime"] >= result["duration"] - 0.1, result
    frame = 1 / fps
    assert abs(result["duration"] - extinf_sum) <= frame * len(playlist.entries), \
        (result["duration"], extinf_sum)
    assert 0 < result["framesMidway"] < result["frames"], result
    assert result["frames"] >= 0.8 * fps * extinf_sum, result
