"""The synthetic publisher against a real livekit-server, seen by a second SDK client."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
import pytest
from livekit import api, rtc
from testbed.livekit_server import LiveKitServer
from testbed.publisher import (
    SyntheticPublisher,
    rtc_configuration,
)
from testbed.synthetic_media import WHITE

from .support import publishing, token

pytestmark = pytest.mark.integration

WIDTH, HEIGHT, FPS = 640, 360, 30




def room_name() -> str:
    return f"room-{uuid.uuid4().hex[:8]}"


@dataclass
class Viewer:
    """A second participant: the official SDK subscribes and decodes."""

    video: list[tuple[float, int, int, float]] = field(default_factory=list)  # t, w, h, mean Y
    audio_peaks: list[float] = field(default_factory=list)  # per 10 ms frame, 0..1
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def read_video(self, track: rtc.Track) -> None:
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.I420)
        async for event in stream:
            frame = event.frame
            luma = np.frombuffer(frame.data, dtype=np.uint8, count=frame.width * frame.height)
            self.video.append((time.monotonic(), frame.width, frame.height, float(luma.mean())))

    async def read_audio(self, track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
            pcm = np.frombuffer(event.frame.data, dtype=np.int16)
            self.audio_peaks.append(float(np.abs(pcm).max()) / 32767 if pcm.size else 0.0)

    def frames_since(self, since: float) -> list[tuple[float, int, int, float]]:
        return [frame for frame in self.video if frame[0] >= since]




@asynccontextmanager
async def viewing(server: LiveKitServer, room: str) -> AsyncIterator[Viewer]:
    viewer = Viewer()
    client = rtc.Room()

    @client.on("track_subscribed")
    def _on_track(
        track: rtc.Track, _pub: rtc.RemoteTrackPublication, _p: rtc.RemoteParticipant
    ) -> None:
        reader = viewer.read_video if track.kind == rtc.TrackKind.KIND_VIDEO else viewer.read_audio
        viewer.tasks.append(asyncio.create_task(reader(track)))

    await client.connect(
        server.url,
        token(server, room, f"viewer-{uuid.uuid4().hex[:6]}"),
        rtc.RoomOptions(rtc_config=rtc_configuration(server.url)),  # no public STUN
    )
    try:
        yield viewer
    finally:
        await client.disconnect()
        for task in viewer.tasks:
            task.cancel()
        await asyncio.gather(*viewer.tasks, return_exceptions=True)


async def wait_for(predicate: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.05)


async def list_tracks(server: LiveKitServer, room: str) -> dict[str, list[api.TrackInfo]]:
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lkapi:
        listing = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
    return {p.identity: list(p.tracks) for p in listing.participants}


async def test_publishes_h264_and_opus_that_a_subscriber_decodes(
    livekit_server: LiveKitServer,
) -> None:
    room = room_name()
    async with (
        publishing(livekit_server, room, "camera", width=WIDTH, height=HEIGHT, fps=FPS) as pub,
        viewing(livekit_server, room) as viewer,
    ):
        await wait_for(lambda: viewer.video, 10, "the first decoded video frame")
        first_frame_at = time.monotonic()
        sent_before = pub.frames_sent
        await asyncio.sleep(5)
        sent = pub.frames_sent - sent_before
        tracks = await list_tracks(livekit_server, room)

    # The room sees one H.264 camera track of the right size and one Opus microphone.
    published = {t.type: t for t in tracks["camera"]}
    assert set(published) == {api.TrackType.VIDEO, api.TrackType.AUDIO}
    video, audio = published[api.TrackType.VIDEO], published[api.TrackType.AUDIO]
    assert video.mime_type.lower() == "video/h264"
    assert (video.width, video.height, video.simulcast) == (WIDTH, HEIGHT, False)
    assert video.source == api.TrackSource.CAMERA
    assert audio.mime_type.lower() == "audio/opus"
    assert audio.source == api.TrackSource.MICROPHONE

    # The publisher keeps 30 fps on its clock and 100 audio frames a second.
    assert 0.95 * 5 * FPS <= sent <= 1.05 * 5 * FPS + 2, sent
    assert pub.frames_dropped == 0 and pub.frames_rejected == 0
    assert pub.audio_underruns == 0
    assert len(pub.published_hashes) == pub.frames_sent
    assert [i for i, _, _ in pub.published_hashes] == list(range(pub.frames_sent))

    # The subscriber decoded the H.264 at the published size, at about the sent rate,
    # and saw the white flash frames (one every 2 s).
    decoded = viewer.frames_since(first_frame_at)
    assert {(w, h) for _, w, h, _ in decoded} == {(WIDTH, HEIGHT)}
    assert len(decoded) >= 0.8 * sent, (len(decoded), sent)
    flashes = [t for t, _, _, mean in decoded if mean > WHITE - 20]
    assert 2 <= len(flashes) <= 3, flashes
    assert max(mean for *_, mean in decoded if mean < WHITE - 20) < 160

    # Opus decoded too: the quiet tone and, on the flashes, loud beeps.
    assert len(viewer.audio_peaks) > 300
    assert sum(peak > 0.3 for peak in viewer.audio_peaks) >= 10
    assert sum(0.01 < peak < 0.1 for peak in viewer.audio_peaks) > 200

    # The subscriber's keyframe request (a PLI through the SFU) was honoured at once.
    assert pub.keyframe_requests >= 1
    assert pub.keyframe_latencies
    assert max(sent_at - asked for asked, sent_at in pub.keyframe_latencies) < 0.1


async def test_paused_video_stops_frames_and_stop_leaves_the_room(
    livekit_server: LiveKitServer,
) -> None:
    room = room_name()
    pub = SyntheticPublisher(
        livekit_server.url, token(livekit_server, room, "camera"), width=320, height=180
    )
    await pub.start()
    try:
        async with viewing(livekit_server, room) as viewer:
            await wait_for(lambda: viewer.video, 10, "the first decoded video frame")
            pub.set_video_paused(True)
            await asyncio.sleep(0.3)  # frames in flight
            paused_at, sent_at_pause = time.monotonic(), pub.frames_sent
            await asyncio.sleep(1.5)
            assert pub.frames_sent == sent_at_pause
            assert not viewer.frames_since(paused_at)
            pub.set_video_paused(False)
            resumed_at = time.monotonic()
            await wait_for(lambda: viewer.frames_since(resumed_at), 5, "frames after resuming")
            # Frame numbers followed the clock through the pause: ~1.8 s of them skipped.
            indexes = [i for i, _, _ in pub.published_hashes]
            gaps = [b - a for a, b in itertools.pairwise(indexes) if b - a > 1]
            assert len(gaps) == 1 and 45 <= gaps[0] <= 70, gaps

            # stop() unpublishes and leaves while the viewer keeps the room open.
            await pub.stop()
            assert not pub.room.isconnected()

            async def camera_left() -> bool:
                return "camera" not in await list_tracks(livekit_server, room)

            deadline = time.monotonic() + 5
            while not await camera_left():
                assert time.monotonic() < deadline, "the publisher is still in the room"
                await asyncio.sleep(0.1)
    finally:
        await pub.stop()  # idempotent: a no-op after the stop above
