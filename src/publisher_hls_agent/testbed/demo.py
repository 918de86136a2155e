"""The demo: a local server, a synthetic publisher and the room client, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from livekit import api

from ..media.units import AccessUnit, AudioPacket
from ..room.client import RoomClient
from ..room.tracks import RemoteTrack
from .livekit_server import LiveKitServer, running_server
from .publisher import SyntheticPublisher

ROOM = "demo"
PUBLISHER = "synthetic-publisher"


def token(server: LiveKitServer, identity: str, room: str = ROOM) -> str:
    return (api.AccessToken(server.api_key, server.api_secret)
            .with_identity(identity)
            .with_grants(api.VideoGrants(room_join=True, room=room))
            .to_jwt())


@dataclass
class TrackCount:
    track: RemoteTrack
    units: int = 0
    keyframes: int = 0
    bytes: int = 0


@dataclass
class CountingConsumer:
    """A MediaConsumer that only counts: what the demo prints."""

    tracks: dict[str, TrackCount] = field(default_factory=dict)

    def on_track_started(self, track: RemoteTrack) -> None:
        self.tracks[track.sid] = TrackCount(track)

    def on_video(self, track_sid: str, unit: AccessUnit) -> None:
        count = self.tracks[track_sid]
        count.units += 1
        count.keyframes += unit.keyframe
        count.bytes += len(unit.data)

    def on_audio(self, track_sid: str, packet: AudioPacket) -> None:
        count = self.tracks[track_sid]
        count.units += 1
        count.bytes += len(packet.data)

    def on_track_ended(self, track_sid: str) -> None:
        pass

    def line(self) -> str:
        return "  ".join(
            f"{c.track.kind} {c.track.mime_type}: {c.units} "
            + ("frames" if c.track.kind == "video" else "packets")
            + (f" ({c.keyframes} keyframes)" if c.track.kind == "video" else "")
            + f", {c.bytes / 1000:.0f} kB"
            for c in self.tracks.values()
        ) or "waiting for tracks"


async def run_demo(duration: float, width: int, height: int, fps: int) -> int:
    with running_server() as server:
        print(f"livekit-server {server.url} (log: {server.log_path})")
        publisher = SyntheticPublisher(server.url, token(server, PUBLISHER), width=width,
                                       height=height, fps=fps)
        await publisher.start()
        print(f"publisher {PUBLISHER!r}: {width}x{height} {fps} fps H.264 + Opus")
        consumer = CountingConsumer()
        client = RoomClient(server.url, token(server, "publisher-hls-recorder"), PUBLISHER,
                            consumer)
        receiving = asyncio.create_task(client.run())
        start = time.monotonic()
        try:
            while (elapsed := time.monotonic() - start) < duration and not receiving.done():
                await asyncio.sleep(1.0)
                print(f"{elapsed + 1:5.1f} s  {consumer.line()}")
        finally:
            await client.close()
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiving
            await publisher.stop()
        print(f"published {publisher.frames_sent} video frames; received: {consumer.line()}")
        video = [c for c in consumer.tracks.values() if c.track.kind == "video"]
        return 0 if video and video[0].units > 0 else 1
