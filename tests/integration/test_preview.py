"""The preview page of a running agent, in Chromium: it lists the finished and the
active recording, plays the active one with hls.js through the agent's own file routes
(the token only in an Authorization header), and a screenshot shows it; a recording's
thumbnails are its poster and a strip that seeks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from testbed.browser import chromium
from testbed.livekit_server import LiveKitServer
from testbed.web_server import serving

from .support import agent, dispatch_job, publishing, recordings, wait_for

pytestmark = pytest.mark.integration

PLAYING = """(() => {
  const video = document.getElementById("video");
  const rows = [...document.querySelectorAll("#list tbody tr")].map((r) => r.innerText);
  const box = video.getBoundingClientRect();
  return { rows, playing: window.preview.playing(), time: video.currentTime,
           frames: video.getVideoPlaybackQuality().totalVideoFrames,
           box: [box.x, box.y, box.width, box.height],
           status: document.getElementById("status").innerText };
})()"""


def picture_region(png: Path, box: list[float]) -> np.ndarray:
    with av.open(str(png)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24")
    x, y, width, height = (int(v) for v in box)
    return image[y:y + height, x:x + width]


async def test_the_preview_page_lists_and_plays_recordings(livekit_server: LiveKitServer,
                                                           tmp_path: Path) -> None:
    output = tmp_path / "out"
    async with serving(tmp_path) as web_url, agent(
            livekit_server, tmp_path, "preview-agent", THUMBNAILS_ENABLED="true",
            THUMBNAIL_INTERVAL_SECS="1", PREVIEW_PLAYER_URL=f"{web_url}/hls/hls.min.js",
    ) as worker:
        await dispatch_job(livekit_server, "preview-agent", "preview")
        async with publishing(livekit_server, "preview", "earlier", width=640, height=360):
            await wait_for(lambda: any(output.glob("*earlier*/segment00002.ts")), 30,
                           "a first recording")
        await wait_for(lambda: "earlier" in recordings(output), 30, "it to be finalized")
        async with publishing(livekit_server, "preview", "now", width=640, height=360):
            await wait_for(lambda: any(output.glob("*now*/segment00002.ts")), 30,
                           "an active recording")
            async with chromium() as page:
                await page.goto(f"{worker.http_url}/preview#token={worker.control_token()}")
                seen: dict[str, Any] = {}
                for _ in range(100):
                    seen = await page.evaluate(PLAYING)
                    if len(seen["rows"]) == 2 and seen["time"] > 2:
                        break
                    await asyncio.sleep(0.3)
                else:
                    raise AssertionError(f"the page did not play within 30 s: {seen}")
                screenshot = tmp_path / "preview.png"
                await page.screenshot(screenshot)
                assert await page.evaluate("location.hash") == ""  # the token left the URL
                strip = await seeks_by_its_thumbnails(page, "earlier")
    rows = sorted(seen["rows"])
    # (▶: the room's replay)
    assert "preview ▶\tearlier\tfinished" in rows[0], rows
    assert "preview ▶\tnow\trecording" in rows[1], rows
    assert "now" in str(seen["playing"]) and seen["frames"] > 30, seen
    picture = picture_region(screenshot, seen["box"])
    assert picture.std() > 20, "the video area of the screenshot is flat: nothing is playing"
    access_log = worker.log()
    assert worker.control_token() not in access_log
    assert len(strip["widths"]) >= 2 and all(strip["widths"]), strip
    assert strip["poster"].startswith("blob:") and abs(strip["time"] - 1.0) < 0.5, strip


async def seeks_by_its_thumbnails(page: Any, participant: str) -> dict[str, Any]:
    """Choose ``participant``'s recording, wait for its thumbnail strip, click the
    second picture; what the strip and the player show then."""
    await page.evaluate(f"""(() => {{
      const i = window.preview.recordings.findIndex((e) => e.participant === "{participant}");
      play(window.preview.recordings[i], document.querySelectorAll("#list tbody tr")[i]);
    }})()""")
    widths: list[int] = []
    for _ in range(100):
        widths = await page.evaluate(
            "[...document.querySelectorAll('#strip img')].map((i) => i.naturalWidth)")
        if len(widths) >= 2 and all(widths):
            break
        await asyncio.sleep(0.2)
    time = await page.evaluate("""new Promise((done) => {
      const video = document.getElementById("video");
      video.pause();
      video.addEventListener("seeked", () => done(video.currentTime), { once: true });
      document.querySelectorAll("#strip img")[1].click();
    })""")
    return {"widths": widths, "time": time,
            "poster": await page.evaluate("document.getElementById('video').poster")}


async def test_the_page_sends_its_token_only_to_the_agent(tmp_path: Path) -> None:
    """A playlist may name segments on another host: hls.js fetches them without the
    agent's token (it used to add the Authorization header to every request)."""
    from aiohttp import web
    from livekit import api as lk_api
    from testbed.livekit_server import free_port

    from publisher_hls_agent.api.server import build_app, start_server
    from publisher_hls_agent.metrics import Metrics

    seen: list[dict[str, str]] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=b"\x47" + bytes(187), content_type="video/mp2t",
                            headers={"Access-Control-Allow-Origin": "*"})

    other = web.Application()
    other.router.add_get("/{name}", elsewhere)
    other_runner = web.AppRunner(other, access_log=None)
    await other_runner.setup()
    other_port = free_port()
    await web.TCPSite(other_runner, "127.0.0.1", other_port).start()
    folder = tmp_path / "out" / "r1_viewer_1"
    folder.mkdir(parents=True)
    (folder / "playlist.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n"
        f"http://127.0.0.1:{other_port}/segment00000.ts\n#EXT-X-ENDLIST\n")
    (folder / "recording.json").write_text('{"room": "r1", "participant": "viewer"}')

    class Control:
        ready = True

        def recordings(self) -> list[dict[str, Any]]:
            return []

        def control(self, room: str, participant: str, op: str) -> object | None:
            return None

    key, secret = "APIkey", "a-secret-that-is-long-enough-for-hs256"
    bearer = (lk_api.AccessToken(key, secret).with_identity("viewer")
              .with_grants(lk_api.VideoGrants(room_record=True)).to_jwt())
    async with serving(tmp_path) as web_url:
        port = free_port()
        runner = await start_server(build_app(Control(), Metrics(), key, secret,
                                              output_dir=tmp_path / "out",
                                              player_url=f"{web_url}/hls/hls.min.js"),
                                    "127.0.0.1", port)
        try:
            async with chromium() as page:
                await page.goto(f"http://127.0.0.1:{port}/preview#token={bearer}")
                for _ in range(100):
                    if await page.evaluate("window.preview.recordings.length") == 1:
                        break
                    await asyncio.sleep(0.2)
                await page.evaluate("play(window.preview.recordings[0], "
                                    "document.querySelector('#list tbody tr'))")
                await wait_for(lambda: bool(seen), 30, "the segment from the other host")
        finally:
            await runner.cleanup()
            await other_runner.cleanup()
    assert all("Authorization" not in headers for headers in seen), seen


POSITIONS = "window.replay.positions()"


async def test_a_room_replays_every_participant_on_one_clock(livekit_server: LiveKitServer,
                                                            tmp_path: Path) -> None:
    """Two participants, the second joining 3 s after the first: on the room's replay
    page both play on one wall clock, after play and after a seek, within 100 ms."""
    output = tmp_path / "out"
    async with serving(tmp_path) as web_url, agent(
            livekit_server, tmp_path, "replay-agent",
            PREVIEW_PLAYER_URL=f"{web_url}/hls/hls.min.js") as worker:
        await dispatch_job(livekit_server, "replay-agent", "replay")
        async with publishing(livekit_server, "replay", "first", width=640, height=360):
            await wait_for(lambda: any(output.glob("*first*/segment00002.ts")), 30,
                           "the first participant's recording")
            async with publishing(livekit_server, "replay", "second", width=640, height=360):
                await wait_for(lambda: any(output.glob("*second*/segment00005.ts")), 30,
                               "the second participant's recording")
        await wait_for(lambda: {"first", "second"} <= set(recordings(output)), 30,
                       "both recordings to be finalized")
        async with chromium() as page:
            await page.goto(f"{worker.http_url}/preview/room/replay#token="
                            f"{worker.control_token()}")
            for _ in range(100):
                if await page.evaluate("window.replay && window.replay.ready"):
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("the replay page did not load its players: " +
                                     await page.evaluate("document.body.innerText"))
            await page.evaluate("window.replay.play()")
            at_start = await in_step(page, lambda seen: seen[0]["wall"] is not None)
            # Where the second participant has joined: both play.
            await page.evaluate("""(() => {
              const [first, second] = window.replay.positions();
              window.replay.seek((second.start - first.start) / 1000 + 2);
            })()""")
            both = await in_step(page, lambda seen: all(p["wall"] is not None for p in seen))
            screenshot = tmp_path / "replay.png"
            await page.screenshot(screenshot)
    assert [p["participant"] for p in at_start] == ["first", "second"], at_start
    assert at_start[1]["wall"] is None, at_start  # not yet joined at the room's start
    spread = max(p["wall"] for p in both) - min(p["wall"] for p in both)
    print("replay positions after the seek (wall clock, ms):", both, f"spread {spread:.0f} ms")
    assert spread <= 100, both
    assert not any(p["paused"] for p in both), both


async def in_step(page: Any, wanted: Any) -> list[dict[str, Any]]:
    """The players' positions once ``wanted`` holds and they have played a second in
    step (a seek takes hls.js a moment)."""
    seen: list[dict[str, Any]] = []
    for _ in range(100):
        seen = await page.evaluate(POSITIONS)
        if wanted(seen) and all(not p["paused"] for p in seen if p["wall"] is not None):
            await asyncio.sleep(1.0)
            return await page.evaluate(POSITIONS)  # type: ignore[no-any-return]
        await asyncio.sleep(0.2)
    raise AssertionError(f"the players did not settle: {seen}")
