"""Per-track packet readers: RTP packets in, access units and audio packets out.

They sit between the aiortc tap (one call per packet) and the consumer, so they are
written for the per-packet cost: no logging, no allocation beyond what the result needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiortc.rtp import RtpPacket

from ..media import blank, h264
from ..media.assembler import FrameAssembler
from ..media.rtp import SenderReport, timestamp_unwrapper
from ..media.units import AccessUnit, AudioPacket


@dataclass(frozen=True)
class RemoteTrack:
    """What the room says about a track of the recorded participant."""

    sid: str
    kind: str  # "audio" | "video"
    mime_type: str  # e.g. "video/H264", "audio/opus"
    width: int = 0
    height: int = 0
    stereo: bool = False


class MediaConsumer(Protocol):
    """Receives the recorded participant's media. Called on the event loop."""

    def on_track_started(self, track: RemoteTrack) -> None: ...

    def on_video(self, track_sid: str, unit: AccessUnit) -> None: ...

    def on_audio(self, track_sid: str, packet: AudioPacket) -> None: ...

    def on_track_ended(self, track_sid: str) -> None: ...

    def on_track_unsupported(self, track: RemoteTrack, reason: str) -> None:
        """A track of the participant that cannot be recorded (its codec)."""


@dataclass
class TrackStats:
    packets: int = 0
    frames: int = 0
    keyframes: int = 0
    broken_frames: int = 0  # could not be depacketized
    blank_frames: int = 0  # the SFU's own, dropped (media/blank.py)


class _Reader:
    def __init__(self, track: RemoteTrack, consumer: MediaConsumer) -> None:
        self.track = track
        self.consumer = consumer
        self.stats = TrackStats()
        self.sender_report: SenderReport | None = None
        self.ended = False

    def on_sender_report(self, report: SenderReport) -> None:
        self.sender_report = report

    def on_bye(self) -> None:
        if not self.ended:
            self.ended = True
            self.consumer.on_track_ended(self.track.sid)


class H264Reader(_Reader):
    """Reassembles H.264 access units; asks for a keyframe after loss or damage."""

    def __init__(self, track: RemoteTrack, consumer: MediaConsumer,
                 request_keyframe: Callable[[], None]) -> None:
        super().__init__(track, consumer)
        self._assembler = FrameAssembler(h264.starts_access_unit)
        self._request_keyframe = request_keyframe

    @property
    def frames_dropped(self) -> int:
        return self._assembler.frames_dropped

    @property
    def packets_late(self) -> int:
        return self._assembler.packets_late

    def on_rtp(self, packet: RtpPacket, arrival: float) -> None:
        self.stats.packets += 1
        frames = self._assembler.push(packet.sequence_number, packet.timestamp, bool(packet.marker),
                                      packet.payload, arrival)
        for frame in frames:
            self._emit(frame.payloads, frame.rtp_timestamp, frame.arrival, frame.after_loss)

    def _emit(self, payloads: list[bytes], timestamp: int, arrival: float,
              after_loss: bool) -> None:
        try:
            nals = h264.depacketize(payloads)
        except h264.H264PayloadError:
            self.stats.broken_frames += 1
            self._request_keyframe()
            return
        has_idr, has_sps, has_pps = h264.describe_access_unit(nals)
        if has_sps and blank.is_blank_keyframe(nals):
            self.stats.blank_frames += 1
            return
        if after_loss and not has_idr:
            self._request_keyframe()
        self.stats.frames += 1
        self.stats.keyframes += has_idr
        self.consumer.on_video(self.track.sid, AccessUnit(
            data=h264.to_annexb(nals), rtp_timestamp=timestamp, arrival=arrival,
            keyframe=has_idr, has_parameter_sets=has_sps and has_pps, after_loss=after_loss,
        ))


class OpusReader(_Reader):
    """Passes Opus packets on with unwrapped timestamps; drops late duplicates."""

    def __init__(self, track: RemoteTrack, consumer: MediaConsumer) -> None:
        super().__init__(track, consumer)
        self._timestamps = timestamp_unwrapper()
        self._last_emitted: int | None = None
        self.late_packets = 0

    def on_rtp(self, packet: RtpPacket, arrival: float) -> None:
        self.stats.packets += 1
        if blank.is_blank_audio(packet.payload):
            self.stats.blank_frames += 1
            return
        timestamp = self._timestamps.unwrap(packet.timestamp)
        if self._last_emitted is not None and timestamp <= self._last_emitted:
            self.late_packets += 1
            return
        self._last_emitted = timestamp
        self.stats.frames += 1
        self.consumer.on_audio(self.track.sid, AudioPacket(packet.payload, timestamp, arrival))
