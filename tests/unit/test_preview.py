"""The preview page's server side against a real aiohttp server and real folders: what
it lists to whom, which files it serves, and the hls.js it loads."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from livekit import api
from testbed.livekit_server import free_port
from testbed.web_server import HLS_JS

from publisher_hls_agent.api.server import build_app, start_server
from publisher_hls_agent.config import HLS_JS_CDN, HLS_JS_CDN_INTEGRITY
from publisher_hls_agent.metrics import Metrics

pytestmark = pytest.mark.unit

KEY, SECRET = "APIkey", "a-secret-that-is-long-enough-for-hs256"
PLAYLIST = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nsegment00000.ts\n"


def token(**grants: Any) -> str:
    return (api.AccessToken(KEY, SECRET).with_identity("viewer")
            .with_grants(api.VideoGrants(**grants)).to_jwt())


def recording(output: Path, name: str, summary: dict[str, Any] | None = None,
              segments: bool = True) -> Path:
    folder = output / name
    folder.mkdir(parents=True)
    (folder / "playlist.m3u8").write_text(PLAYLIST)
    if segments:
        (folder / "segment00000.ts").write_bytes(b"\x47" * 188)
    if summary is not None:
        (folder / "recording.json").write_text(json.dumps(summary))
    return folder


class Agent:
    """Stands in for the worker: one recording in progress, in room r2."""

    ready = True

    def __init__(self, output: Path) -> None:
        self.output = output

    def recordings(self) -> list[dict[str, Any]]:
        return [{"room": "r2", "participant": "live", "folder": str(self.output / "r2_live_2"),
                 "started_at": "2026-11-24T10:00:00.000+00:00", "duration": 4.0}]

    def control(self, room: str, participant: str, op: str) -> object | None:
        return None


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    output = tmp_path / "out"
    recording(output, "r1_done_1", {"room": "r1", "participant": "done", "duration": 2.0,
                                    "started_at": "2026-11-24T09:00:00.000+00:00",
                                    "video": {"source_codec": "vp8"}})
    recording(output, "r2_live_2")
    recording(output, "crashed")  # neither a summary nor a job: no known room
    recording(output, "r1_uploaded_3", {"room": "r1", "participant": "uploaded"},
              segments=False)  # real-time upload moved its segments to the bucket
    (tmp_path / "secret.ts").write_bytes(b"outside the output folder")
    port = free_port()
    runner = await start_server(build_app(Agent(output), Metrics(), KEY, SECRET,
                                          output_dir=output), "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def get(url: str, bearer: str | None = None) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as reply:
        return reply.status, reply.headers.get("Content-Type", ""), await reply.text()


async def test_the_page_is_open_and_loads_the_pinned_hls_js(served: str) -> None:
    status, kind, page = await get(f"{served}/preview")
    assert status == 200 and kind.startswith("text/html")
    assert f'src="{HLS_JS_CDN}" integrity="{HLS_JS_CDN_INTEGRITY}"' in page


def test_the_pinned_hash_is_the_npm_packages_own_file() -> None:
    """jsDelivr serves the npm tarball's files byte for byte; web/package-lock.json pins
    the same hls.js the URL names."""
    installed = (HLS_JS / "hls.min.js").read_bytes()
    digest = base64.b64encode(hashlib.sha384(installed).digest()).decode()
    assert f"sha384-{digest}" == HLS_JS_CDN_INTEGRITY
    version = json.loads((HLS_JS.parent / "package.json").read_text())["version"]
    assert f"/hls.js@{version}/" in HLS_JS_CDN


async def test_another_player_url_is_escaped_and_unpinned(tmp_path: Path) -> None:
    port = free_port()
    app = build_app(Agent(tmp_path), Metrics(), KEY, SECRET, output_dir=tmp_path,
                    player_url='http://cdn.test/hls.js?a="b"&c')
    runner = await start_server(app, "127.0.0.1", port)
    try:
        _, _, page = await get(f"http://127.0.0.1:{port}/preview")
    finally:
        await runner.cleanup()
    assert 'src="http://cdn.test/hls.js?a=&quot;b&quot;&amp;c"' in page
    assert "integrity=" not in page


async def test_the_list_needs_a_token_and_shows_only_its_rooms(served: str) -> None:
    assert (await get(f"{served}/v1/library"))[0] == 401
    assert (await get(f"{served}/v1/library", token(room_join=True, room="r1")))[0] == 401
    _, _, body = await get(f"{served}/v1/library", token(room_record=True))
    listed = {e["folder"]: e for e in json.loads(body)["recordings"]}
    assert set(listed) == {"r1_done_1", "r2_live_2", "crashed", "r1_uploaded_3"}
    assert listed["r1_done_1"]["state"] == "finished" and listed["r1_done_1"]["video"] == "vp8"
    assert listed["r2_live_2"]["state"] == "recording" and listed["r2_live_2"]["room"] == "r2"
    assert listed["crashed"]["state"] == "interrupted" and listed["crashed"]["room"] is None
    assert listed["r1_uploaded_3"]["on_disk"] is False and listed["r1_done_1"]["on_disk"]
    _, _, body = await get(f"{served}/v1/library", token(room_record=True, room="r1"))
    assert {e["folder"] for e in json.loads(body)["recordings"]} == {"r1_done_1",
                                                                     "r1_uploaded_3"}


async def test_files_are_served_by_room_and_by_name_only(served: str) -> None:
    every_room, only_r1 = token(room_record=True), token(room_record=True, room="r1")
    status, kind, body = await get(f"{served}/v1/files/r1_done_1/playlist.m3u8", only_r1)
    assert (status, kind, body) == (200, "application/vnd.apple.mpegurl", PLAYLIST)
    status, kind, _ = await get(f"{served}/v1/files/r1_done_1/segment00000.ts", only_r1)
    assert (status, kind) == (200, "video/mp2t")
    assert (await get(f"{served}/v1/files/r1_done_1/playlist.m3u8"))[0] == 401
    # another room's file answers as a missing one: a room token learns nothing of them
    assert (await get(f"{served}/v1/files/r2_live_2/playlist.m3u8", only_r1))[0] == 404
    assert (await get(f"{served}/v1/files/r2_live_2/playlist.m3u8", every_room))[0] == 200
    assert (await get(f"{served}/v1/files/crashed/playlist.m3u8", only_r1))[0] == 404
    assert (await get(f"{served}/v1/files/crashed/playlist.m3u8", every_room))[0] == 200
    for hostile in ("..%2Fsecret.ts", "%2E%2E/secret.ts", "r1_done_1/recording.json",
                    "r1_done_1/..%2F..%2Fsecret.ts", "r1_done_1/.upload.json",
                    "r1_uploaded_3/segment00000.ts"):
        status, _, body = await get(f"{served}/v1/files/{hostile}", every_room)
        assert status == 404, (hostile, body)


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An OUTPUT_DIR with links out of it and malformed summaries (issue 16, 8 and 10)."""
    output = tmp_path / "out"
    outside = tmp_path / "elsewhere"
    recording(outside, "real", {"room": "r1", "participant": "x"})
    (output).mkdir()
    (output / "linked").symlink_to(outside / "real")  # a folder that is a link
    folder = recording(output, "r1_file_link", {"room": "r1", "participant": "y"},
                       segments=False)
    (folder / "segment00000.ts").symlink_to(tmp_path / "elsewhere" / "real" / "segment00000.ts")
    recording(output, "odd_types", {"room": "r1", "participant": 7, "started_at": 1234,
                                    "duration": "long", "video": "vp8"})
    oracle = recording(output, "oracle", {"room": "r1", "participant": "z"})
    (oracle / "playlist.m3u8").write_text(PLAYLIST.replace("segment00000.ts", "/etc/hostname"))
    nomap = recording(output, "no_map_uri", {"room": "r1"})
    (nomap / "playlist.m3u8").write_text(PLAYLIST.replace("#EXTINF", "#EXT-X-MAP:X=1\n#EXTINF"))
    port = free_port()
    runner = await start_server(build_app(Agent(output), Metrics(), KEY, SECRET,
                                          output_dir=output), "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}", output
    finally:
        await runner.cleanup()


async def test_links_in_the_output_folder_are_never_followed(
        hostile: tuple[str, Path]) -> None:
    url, _ = hostile
    every_room = token(room_record=True)
    for path in ("linked/playlist.m3u8", "linked/segment00000.ts",
                 "r1_file_link/segment00000.ts"):
        assert (await get(f"{url}/v1/files/{path}", every_room))[0] == 404, path
    listed = {e["folder"] for e in json.loads((await get(f"{url}/v1/library",
                                                          every_room))[2])["recordings"]}
    assert "linked" not in listed


async def test_one_malformed_recording_does_not_break_the_listing(
        hostile: tuple[str, Path]) -> None:
    url, _ = hostile
    status, _, body = await get(f"{url}/v1/library", token(room_record=True))
    assert status == 200, body
    entries = {e["folder"]: e for e in json.loads(body)["recordings"]}
    odd = entries["odd_types"]
    assert (odd["participant"], odd["started_at"], odd["duration"], odd["video"]) == (
        None, None, None, None)
    assert entries["oracle"]["on_disk"] is False  # names no file of ours: says nothing
    assert entries["no_map_uri"]["on_disk"] is False
