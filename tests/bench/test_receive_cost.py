"""What receiving one publisher costs the agent, before any recording work.

The publisher runs in its own process so that only the receiving side is measured:
this process's CPU seconds (all threads) per wall second, while the room client
receives one 720p30 ~2 Mbps H.264 + Opus stream from a real livekit-server.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest
from testbed.demo import token
from testbed.livekit_server import LiveKitServer

from publisher_hls_agent.media.track import RemoteTrack
from publisher_hls_agent.media.units import AccessUnit, AudioPacket
from publisher_hls_agent.room.client import RoomClient

from .support import publisher_process

pytestmark = pytest.mark.bench

WARM_UP, MEASURE = 5.0, 20.0


@dataclass
class TrackCount:
    track: RemoteTrack
    units: int = 0
    bytes: int = 0


@dataclass
class CountingConsumer:
    """Counts what arrives and does nothing else: the receive path alone."""

    tracks: dict[str, TrackCount] = field(default_factory=dict)

    def on_track_unsupported(self, track: RemoteTrack, reason: str) -> None:
        pass

    def on_track_started(self, track: RemoteTrack) -> None:
        self.tracks[track.sid] = TrackCount(track)

    def on_video(self, track_sid: str, unit: AccessUnit) -> None:
        self._count(track_sid, len(unit.data))

    def on_video_pending(self, track_sid: str, pending: bool) -> None: ...

    def on_audio(self, track_sid: str, packet: AudioPacket) -> None:
        self._count(track_sid, len(packet.data))

    def on_track_ended(self, track_sid: str) -> None:
        pass

    def _count(self, track_sid: str, size: int) -> None:
        count = self.tracks[track_sid]
        count.units += 1
        count.bytes += size


async def test_cpu_per_received_720p30_stream(livekit_server: LiveKitServer) -> None:
    room = "bench-receive"
    consumer = CountingConsumer()
    async with publisher_process(livekit_server, room, "bench-publisher",
                                 WARM_UP + MEASURE + 10):
        client = RoomClient(livekit_server.url, token(livekit_server, "bench-recorder", room),
                            "bench-publisher", consumer)
        task = asyncio.create_task(client.run())
        try:
            await asyncio.sleep(WARM_UP)
            units = {sid: c.units for sid, c in consumer.tracks.items()}
            size = sum(c.bytes for c in consumer.tracks.values())
            cpu, wall = time.process_time(), time.monotonic()
            await asyncio.sleep(MEASURE)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            rates = {c.track.kind: (c.units - units.get(sid, 0)) / wall
                     for sid, c in consumer.tracks.items()}
            mbps = (sum(c.bytes for c in consumer.tracks.values()) - size) * 8 / wall / 1e6
        finally:
            await client.close()
            await task
    print(f"\nreceive cost, one 720p30 stream: {100 * cpu / wall:.1f} % of one core "
          f"({cpu:.2f} CPU s over {wall:.1f} s); video {rates.get('video', 0):.1f} fps, "
          f"audio {rates.get('audio', 0):.1f} packets/s, {mbps:.2f} Mbit/s")
    assert rates.get("video", 0) > 25  # a figure for a broken stream would mislead
