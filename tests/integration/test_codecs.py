"""Cameras in codecs other than H.264, encoded for real by libwebrtc in the official SDK.
VP8 (the browser default in LiveKit) cannot be carried in HLS: it is transcoded to H.264.
VP9 and AV1 are passed through into fMP4 segments (KEEP_OPUS) and transcoded to H.264
for MPEG-TS ones."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest
from livekit import rtc
from testbed.livekit_server import LiveKitServer
from testbed.publisher import rtc_configuration

from publisher_hls_agent.hls.check import check_recording
from publisher_hls_agent.recorder.options import RecorderOptions

from .support import ffprobe_streams, record_for, token

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def sdk_camera(server: LiveKitServer, room_name: str, identity: str,
                     codec: rtc.VideoCodec.ValueType) -> AsyncIterator[None]:
    """Raw I420 frames and a tone; the SDK encodes the video as ``codec``, the audio as
    Opus."""
    room = rtc.Room()
    await room.connect(server.url, token(server, room_name, identity),
                       rtc.RoomOptions(auto_subscribe=False,
                                       rtc_config=rtc_configuration(server.url)))
    video = rtc.VideoSource(320, 240)
    audio = rtc.AudioSource(48000, 1)
    await room.local_participant.publish_track(
        rtc.LocalVideoTrack.create_video_track("camera", video),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA,
                                video_codec=codec))
    await room.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("microphone", audio),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))

    async def send() -> None:
        tone = (np.sin(np.arange(480) * 2 * np.pi * 440 / 48000) * 8000).astype(np.int16)
        for tick in range(10**6):
            picture = np.full(320 * 240 * 3 // 2, tick % 256, dtype=np.uint8)
            video.capture_frame(rtc.VideoFrame(320, 240, rtc.VideoBufferType.I420,
                                               picture.tobytes()))
            for _ in range(3):  # ~33 ms of audio, 10 ms at a time
                await audio.capture_frame(rtc.AudioFrame(tone.tobytes(), 48000, 1, 480))
            await asyncio.sleep(0.002)

    task = asyncio.create_task(send())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await room.disconnect()


async def test_a_vp8_camera_is_transcoded_to_h264(livekit_server: LiveKitServer,
                                                 tmp_path: Path) -> None:
    async with sdk_camera(livekit_server, "vp8", "vp8-camera", rtc.VideoCodec.VP8):
        summary = await record_for(livekit_server, "vp8", "vp8-camera", 8, RecorderOptions(
            output_dir=tmp_path, auto_activate=True, segment_duration=1.0))
    assert summary["video"]["source_codec"] == "vp8" and summary["video"]["transcoded"]
    assert summary["tracks_not_recorded"] == []
    on_disk = json.loads((Path(summary["folder"]) / "recording.json").read_text())
    assert on_disk["video"] == summary["video"]
    assert check_recording(Path(summary["folder"])).ok


CODECS = {"vp9": rtc.VideoCodec.VP9, "av1": rtc.VideoCodec.AV1}


@pytest.mark.parametrize("name", CODECS)
async def test_vp9_and_av1_are_passed_through_into_fmp4(
        livekit_server: LiveKitServer, tmp_path: Path, name: str) -> None:
    async with sdk_camera(livekit_server, f"pass-{name}", "camera", CODECS[name]):
        summary = await record_for(livekit_server, f"pass-{name}", "camera", 6, RecorderOptions(
            output_dir=tmp_path, auto_activate=True, segment_duration=1.0, keep_opus=True))
    assert summary["video"]["codec"] == name and summary["video"]["passthrough"]
    assert summary["tracks_not_recorded"] == []
    folder = Path(summary["folder"])
    report = check_recording(folder)
    assert report.ok, report.errors
    assert len(summary["segments"]) >= 3
    probed = ffprobe_streams(folder / "output.mp4")
    assert (probed["video"]["codec_name"], probed["video"]["width"]) == (name, 320)
    assert probed["audio"]["codec_name"] == "opus"
    with av.open(str(folder / "output.mp4")) as container:  # every picture decodes
        assert sum(1 for _ in container.decode(video=0)) == summary["frames"]["video"]


@pytest.mark.parametrize("name", CODECS)
async def test_vp9_and_av1_are_transcoded_for_mpeg_ts(
        livekit_server: LiveKitServer, tmp_path: Path, name: str) -> None:
    async with sdk_camera(livekit_server, f"ts-{name}", "camera", CODECS[name]):
        # 10 s: a software AV1 encoder and the transcoder on a busy machine may take
        # seconds to give the first keyframe.
        summary = await record_for(livekit_server, f"ts-{name}", "camera", 10,
                                   RecorderOptions(output_dir=tmp_path, auto_activate=True,
                                                   segment_duration=1.0))
    assert summary["video"]["codec"] == "h264" and summary["video"]["transcoded"]
    assert summary["video"]["source_codec"] == name
    report = check_recording(Path(summary["folder"]))
    assert report.ok, report.errors
