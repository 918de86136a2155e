"""``recording.json``: what a finished recording holds and how it went. Pure.

A typed value built once at the end; ``as_dict`` is the file's JSON (its keys are the
file's documented schema, README "recording.json"), with what the session adds (what
was received, what was uploaded) merged in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..hls.writer import SegmentRecord
from ..media.codecs import TRANSCODED_TO, RecordingFormat
from ..media.track import RemoteTrack
from .pipeline import PipelineStats


def recorded_codec(track: RemoteTrack | None) -> str:
    """The codec of the video units a track gives the recorder (the room client says)."""
    return (track.recorded_codec if track is not None and track.recorded_codec
            else TRANSCODED_TO.name)


def _codec_name(mime: str) -> str:
    return mime.split("/")[-1].lower()


def video_summary(track: RemoteTrack | None) -> dict[str, Any]:
    """What was received (``source_codec``) and what was recorded (``codec``): the same
    when passed through, H.264 when transcoded (``room/tracks.py``). ``published_codec``
    differs from the source when the publisher's backup codec was recorded."""
    source = _codec_name(track.mime_type) if track else "h264"
    codec = recorded_codec(track)
    published = _codec_name(track.published_mime_type) if track and track.published_mime_type \
        else source
    return {"codec": codec, "source_codec": source, "published_codec": published,
            "passthrough": source == codec, "transcoded": source != codec,
            "width": track.width if track else None,
            "height": track.height if track else None}


@dataclass(frozen=True)
class RecordingSummary:
    room: str
    participant: str
    folder: str
    ended_because: str
    started_at: datetime
    ended_at: datetime
    duration: float  # seconds of media
    video: RemoteTrack | None  # the recorded video track, None for audio only
    audio: RemoteTrack | None
    has_video: bool
    has_audio: bool
    format: RecordingFormat
    segments: list[SegmentRecord]
    stats: PipelineStats
    not_recorded: list[dict[str, str]]
    first_segment_after_activation: float | None
    aligned_by: str | None
    failure: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    video_missing: str | None = None  # why the recording began on the audio alone
    trimmed: float = 0.0  # seconds of frozen picture and silence cut from the end

    def as_dict(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "room": self.room,
            "participant": self.participant,
            "folder": self.folder,
            "ended_because": self.ended_because,
            "started_at": self.started_at.isoformat(timespec="milliseconds"),
            "ended_at": self.ended_at.isoformat(timespec="milliseconds"),
            "duration": round(self.duration, 3),
            "trimmed": round(self.trimmed, 3),
            "video": video_summary(self.video) if self.has_video else None,
            "audio": {
                "codec": self.format.audio_codec, "source_codec": "opus",
                "channels": 2 if self.audio and self.audio.stereo else 1,
            } if self.has_audio else None,
            "segment_format": self.format.container,
            "segments": [{"name": s.name, "duration": round(s.duration, 6), "bytes": s.bytes,
                          "discontinuity": s.discontinuity} for s in self.segments],
            "frames": {"video": stats.video_frames, "audio": stats.audio_frames,
                       "frozen": stats.frozen_frames, "dropped": stats.dropped_frames,
                       "freezes": stats.freezes,
                       "longest_freeze": round(stats.longest_freeze, 3),
                       "most_delay": round(stats.most_video_delay, 3)},
            "keyframe_requests": stats.keyframe_requests,
            "pipeline_restarts": stats.restarts,
            "tracks_not_recorded": self.not_recorded,
            "first_segment_after_activation": self.first_segment_after_activation,
            "aligned_by": self.aligned_by,
            **({"audio_moved": {"by": round(stats.audio_moved[0], 4),
                                "at": round(stats.audio_moved[1], 3)}}
               if stats.audio_moved is not None else {}),
            **({"video_missing": {
                "reason": self.video_missing,
                "joined_at": (round(stats.video_joined_at, 3)
                              if stats.video_joined_at is not None else None),
            }} if self.video_missing else {}),
            **({"failure": self.failure} if self.failure else {}),
            **self.extra,
        }
