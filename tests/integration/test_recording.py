"""Recording one participant to HLS, end to end: real server, real publisher, real files.

What comes out is judged by our ``check``, by ffprobe, and by decoding it (the test
may decode; the recorder never does).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from testbed.av_sync import beep_times, either_side_of_the_move, flash_times
from testbed.demo import token
from testbed.livekit_server import LiveKitServer
from testbed.publisher import SyntheticPublisher
from testbed.synthetic_media import access_unit_digest

from publisher_hls_agent.hls.check import check_recording
from publisher_hls_agent.inspection.tsparse import read_pes
from publisher_hls_agent.recorder.options import RecorderOptions
from publisher_hls_agent.worker.session import RecordingSession

from .support import ffmpeg_complaints

pytestmark = pytest.mark.integration


@dataclass
class Recorded:
    summary: dict[str, Any]
    folder: Path
    publisher: SyntheticPublisher


async def record(server: LiveKitServer, output: Path, seconds: float, *,
                 room: str | None = None, identity: str = "alice",
                 during: Any = None, keep_opus: bool = False,
                 **publisher_options: Any) -> Recorded:
    room = room or f"room-{uuid.uuid4().hex[:8]}"
    publisher = SyntheticPublisher(server.url, token(server, identity, room),
                                   **publisher_options)
    await publisher.start()
    session = RecordingSession(server.url, token(server, f"rec-{uuid.uuid4().hex[:6]}", room),
                               room, identity,
                               RecorderOptions(output_dir=output, auto_activate=True,
                                               keep_opus=keep_opus))
    task = asyncio.create_task(session.run())
    try:
        if during is not None:
            await during(publisher)
        else:
            await asyncio.sleep(seconds)
        await session.stop()
        summary = await asyncio.wait_for(task, 30)
    finally:
        await publisher.stop()
    assert summary is not None, "nothing was recorded"
    return Recorded(summary, Path(summary["folder"]), publisher)


def assert_check_passes(folder: Path) -> None:
    report = check_recording(folder)
    print(report.render())
    assert report.ok, report.render()


def ffprobe_codecs(path: Path) -> list[str]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                          "-of", "json", str(path)], check=True, capture_output=True,
                         text=True).stdout
    return [stream["codec_name"] for stream in json.loads(out)["streams"]]


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed")
async def test_60s_720p_recording_is_valid_passthrough_and_in_sync(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    rec = await record(livekit_server, tmp_path, 62, width=1280, height=720, fps=30,
                       bitrate=2_000_000, keyframe_interval_s=2.0, flash_period_s=2.0)
    assert_check_passes(rec.folder)
    output = rec.folder / "output.ts"
    assert ffprobe_codecs(output) == ["h264", "aac"]
    assert ffmpeg_complaints(rec.folder / "playlist.m3u8") == ""
    assert rec.summary["duration"] > 55

    # Passthrough: every recorded access unit is one the publisher sent, byte for byte.
    published = {digest for _, _, digest in rec.publisher.published_hashes}
    units = [pes.data for pes in read_pes(output.read_bytes()) if pes.stream_type == 0x1B]
    assert len(units) >= 0.95 * 30 * rec.summary["duration"]
    assert all(access_unit_digest(unit) in published for unit in units)

    # A/V sync: each flash and its beep line up within 40 ms, at the start and the end.
    flashes, beeps = flash_times(output), beep_times(output)
    # A flash in the last moments may have had its beep cut off by the end of the recording.
    flashes = [f for f in flashes if f < rec.summary["duration"] - 0.2]
    assert len(flashes) >= 25, flashes
    offsets = [min(beeps, key=lambda b, f=f: abs(b - f)) - f for f in flashes]
    late = rec.publisher.audio_behind  # its audio queue ran dry: the beeps left that late
    print("flash -> beep offsets (ms):", [round(o * 1000) for o in offsets],
          f"(the publisher's audio ran {late * 1000:.0f} ms behind at most)",
          "aligned by", rec.summary["aligned_by"], rec.summary.get("audio_moved", ""))
    # The publisher dates its audio 20-30 ms late (testbed/publisher.py) and, sharing
    # this process, by up to another 10 ms when the recorder keeps its loop busy:
    # measured 15-41 ms from run to run, more when its audio queue ran dry on a busy
    # machine (it says by how much). The offset must hold still within a recording (the
    # recorder's part; begun by arrival times, on either side of the audio's one move
    # to the sender reports' place) and stay near the publisher's own.
    for side in either_side_of_the_move(flashes, offsets, rec.summary):
        assert max(side) - min(side) <= 0.010, offsets
    assert max(abs(o) for o in offsets) <= 0.050 + max(late, 0.0), offsets

    # Segment 0 starts with its audio.
    first = [p for p in read_pes((rec.folder / "segment00000.ts").read_bytes())
             if p.stream_type == 0x0F]
    assert first and first[0].pts is not None and first[0].pts / 90000 <= 0.050

    summary = json.loads((rec.folder / "recording.json").read_text())
    assert summary["video"]["width"] == 1280 and summary["audio"]["codec"] == "aac"
    assert [s["name"] for s in summary["segments"]] == sorted(
        p.name for p in rec.folder.glob("segment*.ts"))


async def test_long_publisher_keyframe_interval_still_gives_short_segments(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    rec = await record(livekit_server, tmp_path, 14, width=640, height=360,
                       keyframe_interval_s=10.0)
    assert_check_passes(rec.folder)
    durations = [s["duration"] for s in rec.summary["segments"]]
    assert len(durations) >= 5
    assert max(durations) <= 2.5, durations


async def test_a_publisher_slow_to_answer_keyframe_requests_keeps_segments_on_target(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    """Keyframes only on request, each 0.7 s late (a starved browser; the SDK publisher
    whose pacer queue holds its video at the start): asked for that much ahead of the
    target, every segment after the first that taught it stays within a frame or two
    of 2 s, where each ran 0.7 s over before."""
    rec = await record(livekit_server, tmp_path, 16, width=640, height=360,
                       keyframe_interval_s=60.0, keyframe_answer_delay_s=0.7)
    assert_check_passes(rec.folder)
    durations = [s["duration"] for s in rec.summary["segments"]]
    assert len(durations) >= 6
    print("segments:", durations)
    assert max(durations[1:-1]) <= 2.25, durations


@pytest.mark.parametrize(("room", "identity"), [("../../etc", "a/b"),
                                                ("x" * 250, "ëmoji-😀-participant\x01")])
async def test_hostile_names_record_into_safe_folders(
        livekit_server: LiveKitServer, tmp_path: Path, room: str, identity: str) -> None:
    output = tmp_path / "out"
    rec = await record(livekit_server, output, 4, room=room, identity=identity, width=320,
                       height=240)
    assert rec.folder.parent == output
    assert os.listdir(tmp_path) == ["out"]
    assert_check_passes(rec.folder)


async def test_camera_that_stops_sending_does_not_stall_segmenting(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    async def mute_in_the_middle(publisher: SyntheticPublisher) -> None:
        await asyncio.sleep(5)
        publisher.set_video_paused(True)
        await asyncio.sleep(10)
        publisher.set_video_paused(False)
        await asyncio.sleep(5)

    rec = await record(livekit_server, tmp_path, 0, during=mute_in_the_middle, width=640,
                       height=360, keyframe_interval_s=10.0)
    assert_check_passes(rec.folder)
    durations = [s["duration"] for s in rec.summary["segments"]]
    assert max(durations) <= 2.5, durations
    assert rec.summary["frames"]["frozen"] >= 4
    assert sum(durations) >= 18


async def test_a_publisher_who_stops_and_goes_silent_is_recorded_up_to_there(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    """The camera stops, the microphone hears nothing (the SDK sends only Opus DTX), and
    the recording stops 4 s later: the recorder bridged the pause with a frozen picture
    and silence, and cut them at the end. The recording ends with the last real media."""
    async def stop_then_leave(publisher: SyntheticPublisher) -> None:
        await asyncio.sleep(6)
        publisher.set_video_paused(True)
        publisher.set_audio_silent(True)
        await asyncio.sleep(4)

    rec = await record(livekit_server, tmp_path, 0, during=stop_then_leave, width=320,
                       height=240)
    assert_check_passes(rec.folder)
    summary = rec.summary
    print("duration", summary["duration"], "trimmed", summary["trimmed"], summary["frames"])
    assert 3.0 <= summary["trimmed"] <= 4.5, summary["trimmed"]
    # What is left ends with the last real media: the last picture, or the tone that was
    # still in the SDK's audio queue (200 ms) when the microphone went silent.
    frames = read_pes((rec.folder / "output.ts").read_bytes())
    video = [pes.pts for pes in frames if pes.stream_type == 0x1B and pes.pts is not None]
    after_last_picture = summary["duration"] - (video[-1] - video[0]) / 90000
    assert after_last_picture <= 0.5, after_last_picture


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed")
async def test_keep_opus_records_fmp4_that_passes_check(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    rec = await record(livekit_server, tmp_path, 9, keep_opus=True, width=640, height=360)
    assert_check_passes(rec.folder)
    assert (rec.folder / "init.mp4").is_file()
    assert "#EXT-X-MAP:URI=\"init.mp4\"" in (rec.folder / "playlist.m3u8").read_text()
    assert ffprobe_codecs(rec.folder / "output.mp4") == ["h264", "opus"]
    assert rec.summary["audio"]["codec"] == "opus" and rec.summary["segment_format"] == "fmp4"
    assert ffmpeg_complaints(rec.folder / "playlist.m3u8") == ""


async def test_a_publisher_who_leaves_two_seconds_after_activation_is_recorded(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    """LiveKit forwards its first sender reports about 3 s after a subscription; a visit
    that ends before them is still recorded, from its keyframe, aligned by arrival."""
    from publisher_hls_agent.recorder.state import State

    room = f"room-{uuid.uuid4().hex[:8]}"
    publisher = SyntheticPublisher(livekit_server.url, token(livekit_server, "brief", room),
                                   width=640, height=360, looped=True)
    await publisher.start()
    session = RecordingSession(livekit_server.url, token(livekit_server, "rec-brief", room),
                               room, "brief", RecorderOptions(output_dir=tmp_path,
                                                              auto_activate=True))
    task = asyncio.create_task(session.run())
    try:
        for _ in range(150):
            if session.recorder.state in (State.RECORDING_PENDING, State.RECORDING):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)
    finally:
        await publisher.stop()  # leaves the room: the session ends
    summary = await asyncio.wait_for(task, 30)
    assert summary is not None, "the visit was not recorded"
    print(summary["aligned_by"], summary["duration"], summary["frames"])
    assert summary["duration"] >= 1.0
    assert_check_passes(Path(summary["folder"]))
