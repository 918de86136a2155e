"""Cameras in codecs other than H.264, encoded for real by libwebrtc in the official SDK.
VP8 (the browser default in LiveKit) cannot be carried in HLS: it is transcoded to H.264.
VP9 and AV1 are not recorded yet: the recording holds the audio and says, in
``recording.json``, what it left out and why."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from livekit import rtc

from publisher_hls_agent.hls.check import check_recording
from publisher_hls_agent.recorder.recorder import RecorderOptions
from publisher_hls_agent.testbed.livekit_server import LiveKitServer
from publisher_hls_agent.testbed.publisher import rtc_configuration

from .support import record_for, token

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


@pytest.mark.parametrize("codec", [rtc.VideoCodec.VP9, rtc.VideoCodec.AV1], ids=["vp9", "av1"])
async def test_a_codec_that_cannot_be_recorded_is_reported(
        livekit_server: LiveKitServer, tmp_path: Path, codec: rtc.VideoCodec.ValueType) -> None:
    async with sdk_camera(livekit_server, f"codec-{codec}", "camera", codec):
        summary = await record_for(livekit_server, f"codec-{codec}", "camera", 6,
                                   RecorderOptions(output_dir=tmp_path, auto_activate=True,
                                                   segment_duration=1.0))
    assert summary["video"] is None and summary["audio"]["codec"] == "aac"
    [left_out] = summary["tracks_not_recorded"]
    assert left_out["kind"] == "video" and "cannot be recorded" in left_out["reason"]
    on_disk = json.loads((Path(summary["folder"]) / "recording.json").read_text())
    assert on_disk["tracks_not_recorded"] == summary["tracks_not_recorded"]
    assert check_recording(Path(summary["folder"])).ok
