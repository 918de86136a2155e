"""A real browser publishing: livekit-client (npm, pinned) in headless Chromium sends its
fake camera and microphone, encoded by Chromium's WebRTC stack, as H.264 (passed
through), as VP8 (LiveKit's browser default, transcoded to H.264), and as VP9 or AV1
with livekit-client's default VP8 backup (the server sends the recorder the backup,
which is transcoded). Each recording passes ``check`` and plays to the end in hls.js."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from publisher_hls_agent.hls.check import check_recording
from publisher_hls_agent.recorder.recorder import RecorderOptions
from publisher_hls_agent.testbed.browser_publisher import browser_publishing, video_sent
from publisher_hls_agent.testbed.livekit_server import LiveKitServer

from .playback import assert_plays_to_the_end
from .support import record_for, token

pytestmark = pytest.mark.integration


def probe_codecs(segment: Path) -> list[str]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                          "-of", "json", str(segment)], capture_output=True, check=True)
    return sorted(stream["codec_name"] for stream in json.loads(out.stdout)["streams"])


@pytest.mark.parametrize("codec", ["h264", "vp8", "vp9", "av1"])
async def test_a_browser_publisher_is_recorded_and_plays(livekit_server: LiveKitServer,
                                                         tmp_path: Path, codec: str) -> None:
    room, identity = f"browser-{codec}", f"chromium-{codec}"
    output = tmp_path / "recordings"
    backup = codec in ("vp9", "av1")
    async with browser_publishing(livekit_server.url, token(livekit_server, room, identity),
                                  codec, width=640, height=360, backup_codec=backup,
                                  scratch=tmp_path) as page:
        streams = await video_sent(page)
        assert {s["codec"] for s in streams} == {f"video/{codec.upper()}"}, streams
        summary = await record_for(livekit_server, room, identity, 8, RecorderOptions(
            output_dir=output, auto_activate=True, segment_duration=1.0))

    folder = Path(summary["folder"])
    assert summary["video"]["published_codec"] == codec
    assert summary["video"]["source_codec"] == ("vp8" if backup else codec)
    assert summary["video"]["transcoded"] is (codec != "h264")
    assert summary["tracks_not_recorded"] == []
    assert summary["audio"]["codec"] == "aac"
    report = check_recording(folder)
    assert report.ok, report
    assert probe_codecs(folder / summary["segments"][0]["name"]) == ["aac", "h264"]
    # Chromium sends the backup layers at a lower rate than it was asked for.
    fps = summary["frames"]["video"] / summary["duration"]
    assert fps >= (15 if backup else 0.8 * 30), summary
    await assert_plays_to_the_end(folder, audio="aac", fps=fps)
