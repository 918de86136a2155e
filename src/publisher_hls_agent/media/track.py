"""A track of the recorded participant, and what its media is delivered to.

The room client (``room/``) fills ``RemoteTrack`` from the server's track info and calls a
``MediaConsumer``; the recorder is one. Both live here, below either, so that the
recorder knows tracks without knowing rooms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .units import AccessUnit, AudioPacket


@dataclass(frozen=True)
class RemoteTrack:
    """What the room says about a track of the recorded participant."""

    sid: str
    kind: str  # "audio" | "video"
    mime_type: str  # e.g. "video/H264", "audio/opus"
    width: int = 0
    height: int = 0
    stereo: bool = False
    simulcast: bool = False  # sent as several streams (the SFU forwards one of them)
    # What the publisher also sends for subscribers that cannot take ``mime_type``:
    # livekit-client adds VP8 to VP9 and AV1 unless told not to.
    backup_mime_types: tuple[str, ...] = ()
    published_mime_type: str = ""  # set when a backup codec is what is recorded
    recorded_codec: str = ""  # what the consumer is given: "h264", "vp9" or "av1"
    # End-to-end encryption: "" (none), "gcm" (LiveKit's frame encryption, which a
    # shared key decrypts: media/e2ee.py) or "custom" (the application's own).
    encryption: str = ""


class MediaConsumer(Protocol):
    """Receives the recorded participant's media. Called on the event loop."""

    def on_track_started(self, track: RemoteTrack) -> None: ...

    def on_video(self, track_sid: str, unit: AccessUnit) -> None: ...

    def on_video_pending(self, track_sid: str, pending: bool) -> None:
        """Whether frames that arrived are still to be delivered (a transcoder's
        backlog): while they are, the track is sending, however late they come."""

    def on_audio(self, track_sid: str, packet: AudioPacket) -> None: ...

    def on_track_ended(self, track_sid: str) -> None: ...

    def on_track_unsupported(self, track: RemoteTrack, reason: str) -> None:
        """A track of the participant that cannot be recorded (its codec)."""
