"""A begun recording: its folder, its writer and pipeline, its t=0, and how it ends.

The recorder (``recorder.py``) decides when to begin and what to replay; from then on
this holds what is written: media fed through a pipeline that a failure restarts at the
next keyframe (only repeated failures end the recording), tracks that come back placed
on the same timeline, and ``recording.json`` at the end.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..hls.files import atomic_write
from ..hls.fmp4_writer import Fmp4HlsWriter
from ..hls.mpegts import Streams
from ..hls.names import create_recording_folder
from ..hls.tsformat import CLOCK
from ..hls.writer import SegmentedWriter, SegmentRecord, TsHlsWriter
from ..layout import STARTED_NAME, SUMMARY_NAME, THUMBNAILS_FOLDER, THUMBNAILS_PLAYLIST
from ..media.codecs import FMP4, TS, codec_named
from ..media.rtp import SenderReport
from ..media.track import RemoteTrack
from ..media.units import AccessUnit, AudioPacket
from ..processes import process_identity
from .options import RecorderOptions
from .pipeline import RecordingPipeline
from .summary import RecordingSummary, recorded_codec
from .thumbnails import Thumbnails
from .timeline import AUDIO_RATE, VIDEO_RATE, TrackClock, clock_from_arrival, clock_from_report

NTP_TO_UNIX = 2_208_988_800
MAX_PIPELINE_RESTARTS = 3  # failures inside the pipeline beyond this end the recording

Unit = TypeVar("Unit", AccessUnit, AudioPacket)


class Upload(Protocol):
    """Where the recording's files go as they are written (``storage/uploader.py``)."""

    def started(self, folder: Path) -> None: ...
    def segment_closed(self, segment: SegmentRecord, playlist: bytes) -> None: ...
    def thumbnail_made(self, name: str) -> None:
        """A thumbnail (``thumbnails/thumbNNNNN.jpg``) and its playlist are on disk."""
    def finished(self) -> None: ...


@dataclass(frozen=True)
class Participant:
    """Whose recording, and what the recording reports back to its recorder."""

    room: str
    identity: str
    request_keyframe: Callable[[], None]
    sender_report: Callable[[str], SenderReport | None]
    end_recording: Callable[[str], None]  # asks the session to stop, with a reason
    log: logging.LoggerAdapter[logging.Logger]


class Recording:
    def __init__(self, who: Participant, options: RecorderOptions, *,
                 video: RemoteTrack | None, audio: RemoteTrack | None, arrival: float,
                 ntp_origin: float | None, clock: Callable[[], float],
                 activated_at: float | None, upload: Upload | None,
                 video_missing: str | None = None) -> None:
        """Create the folder, the writer and the pipeline; t=0 is ``arrival`` on the
        recorder's clock, and ``ntp_origin`` on the publisher's when reports placed it.
        ``video_missing``: why it begins on the audio alone; a ``video`` track given
        then joins at its first keyframe."""
        self.who, self.options, self.upload = who, options, upload
        self.video_missing = video_missing
        self._keyframe_asked_at: float | None = None
        self.video_sid = video.sid if video is not None else None
        self.audio_sid = audio.sid if audio is not None else None
        self._clock, self._activated_at = clock, activated_at
        self._failures = 0
        self.failure: str | None = None
        self.first_segment_after: float | None = None  # seconds from activation to disk
        self.origin = (arrival, ntp_origin)
        self.started_at = (datetime.fromtimestamp(ntp_origin - NTP_TO_UNIX, UTC)
                           if ntp_origin is not None else
                           datetime.fromtimestamp(time.time() - (clock() - arrival), UTC))
        self.folder = create_recording_folder(options.output_dir, who.room, who.identity,
                                              self.started_at)
        self._write_started()
        if upload is not None:
            upload.started(self.folder)
        channels = 2 if audio is not None and audio.stereo else 1
        self.thumbnails = (Thumbnails(self.folder, recorded_codec(video), options.thumbnails,
                                      made=self._thumbnail_made)
                           if options.thumbnails is not None and video is not None else None)
        self.pipeline = RecordingPipeline(
            self._writer(video, audio, channels), has_video=video is not None,
            has_audio=audio is not None, segment_duration=options.segment_duration,
            audio_channels=channels, audio_codec=options.format.audio_codec,
            request_keyframe=who.request_keyframe, video_codec=recorded_codec(video),
            audio_leads=video is not None and video_missing is not None,
            keyframe_written=self.thumbnails.keyframe if self.thumbnails else None)
        who.log.info("recording into %s", self.folder)

    def _write_started(self) -> None:
        """What closing this recording needs if the process dies before it finalizes
        (``repair/close.py``)."""
        atomic_write(self.folder / STARTED_NAME, (json.dumps({
            "room": self.who.room, "participant": self.who.identity,
            "started_at": self.started_at.isoformat(timespec="milliseconds"),
            "segment_format": self.options.format.container,
            "writer": process_identity(),
        }) + "\n").encode())

    @staticmethod
    def video_can_join(options: RecorderOptions) -> bool:
        """Whether video can join a recording begun on audio alone: MPEG-TS announces a
        new program after a discontinuity; fMP4's init segment is written once."""
        return options.format.container == TS

    def _writer(self, video: RemoteTrack | None, audio: RemoteTrack | None,
                channels: int) -> SegmentedWriter:
        options: dict[str, Any] = {"segment_duration": self.options.segment_duration,
                                   "max_segments": self.options.max_segments,
                                   "started_at": self.started_at,
                                   "on_segment": self._segment_closed}
        codec = recorded_codec(video)
        container = self.options.format.container
        if video is not None and container not in codec_named(codec).passthrough:
            # (the room client transcodes what the container cannot carry)
            raise RuntimeError(f"{codec} video cannot go into {container} segments")
        if container == FMP4:
            size = (video.width, video.height) if video is not None and video.width else None
            return Fmp4HlsWriter(self.folder, video=video is not None,
                                 audio_channels=channels if audio is not None else None,
                                 video_size=size, video_codec=codec, **options)
        streams = Streams(video=video is not None and self.video_missing is None,
                          audio=audio is not None)
        return TsHlsWriter(self.folder, streams, **options)

    # --- media -------------------------------------------------------------------------

    def video(self, unit: AccessUnit) -> None:
        if not self.pipeline.has_video:
            return
        if self.pipeline.video_timeline is None:  # joining late, or republished:
            if not unit.keyframe:  # placed at its first keyframe
                self._ask_for_a_keyframe(unit.arrival)
                return
            self.place(unit.rtp_timestamp, unit.arrival, self.video_sid, VIDEO_RATE)
        self.guarded(self.pipeline.video, unit)

    def video_pending(self, pending: bool) -> None:
        if self.pipeline.has_video:
            self.pipeline.video_pending(pending)

    def _ask_for_a_keyframe(self, now: float) -> None:
        """Once a second at most (the SFU drops PLIs closer than that)."""
        if self._keyframe_asked_at is None or now - self._keyframe_asked_at >= 1.0:
            self._keyframe_asked_at = now
            self.pipeline.ask_for_keyframe()

    def audio(self, packet: AudioPacket) -> None:
        self.guarded(self.pipeline.audio, packet)

    def place(self, rtp: int, arrival: float, sid: str | None, rate: int,
              restart: bool = False) -> None:
        """Place a track that joins a begun recording (late or republished) by its own
        sender report when the start was placed by reports, else by arrival."""
        arrival_origin, ntp_origin = self.origin
        report = self.who.sender_report(sid) if sid and ntp_origin is not None else None
        clock: TrackClock = (clock_from_report(report, rtp, rate) if report is not None
                             else clock_from_arrival(rtp, arrival, rate))
        origin = ntp_origin if report is not None and ntp_origin is not None else arrival_origin
        if rate == AUDIO_RATE:
            self.pipeline.place_audio(clock, origin, restart=restart)
        else:
            self.pipeline.place_video(clock, origin)

    def guarded(self, feed: Callable[[Unit], None], item: Unit) -> None:
        """Feed the pipeline; a failure inside it (the transcoder, the muxer, the disk)
        restarts it, and only repeated failures end the recording."""
        try:
            feed(item)
        except Exception as exc:
            self._pipeline_failed(exc)

    def _pipeline_failed(self, exc: Exception) -> None:
        self._failures += 1
        log = self.who.log
        if self._failures > MAX_PIPELINE_RESTARTS:
            self.failure = f"the pipeline failed {self._failures} times, last: {exc!r}"
            log.error("%s; ending the recording", self.failure, exc_info=exc)
            self.who.end_recording(self.failure)
            return
        log.error("the pipeline failed (%r); restarting it at the next keyframe (%d of %d "
                  "restarts)", exc, self._failures, MAX_PIPELINE_RESTARTS, exc_info=exc)
        try:
            self.pipeline.restart()
        except Exception as again:
            self._pipeline_failed(again)

    def _segment_closed(self, segment: SegmentRecord, playlist: bytes) -> None:
        if self.first_segment_after is None and self._activated_at is not None:
            self.first_segment_after = round(self._clock() - self._activated_at, 3)
        if self.upload is not None:
            self.upload.segment_closed(segment, playlist)

    # --- the end -----------------------------------------------------------------------

    def finish(self, reason: str, tracks: dict[str, RemoteTrack],
               not_recorded: list[dict[str, str]], aligned_by: str | None,
               extra: dict[str, Any]) -> dict[str, Any]:
        """Close the last segment with its true duration, end the playlist, write
        ``recording.json``; returns what it holds."""
        writer = self.pipeline.writer
        writer.finish(self.pipeline.finish())
        end = writer.end_pts  # frozen picture and silence after the real media are cut
        if self.thumbnails is not None:
            extra = {**extra, "thumbnails": self._thumbnails_made(end / CLOCK)}
        summary = RecordingSummary(
            room=self.who.room, participant=self.who.identity, folder=str(self.folder),
            ended_because=reason, started_at=self.started_at, ended_at=datetime.now(UTC),
            duration=end / CLOCK, video=tracks.get(self.video_sid or ""),
            audio=tracks.get(self.audio_sid or ""), has_video=self.video_sid is not None,
            has_audio=self.audio_sid is not None, format=self.options.format,
            segments=self.pipeline.writer.segments, stats=self.pipeline.stats,
            not_recorded=not_recorded, first_segment_after_activation=self.first_segment_after,
            aligned_by=aligned_by, failure=self.failure, extra=extra,
            video_missing=self.video_missing, trimmed=writer.trimmed).as_dict()
        atomic_write(self.folder / SUMMARY_NAME, (json.dumps(summary, indent=2) + "\n").encode())
        (self.folder / STARTED_NAME).unlink(missing_ok=True)
        if self.upload is not None:
            self.upload.finished()
        self.who.log.info("recording finalized (%s): %d segments, %.1f s in %s", reason,
                          len(summary["segments"]), summary["duration"], self.folder)
        return summary

    def _thumbnail_made(self, name: str) -> None:
        if self.upload is not None:
            self.upload.thumbnail_made(f"{THUMBNAILS_FOLDER}/{name}")

    def _thumbnails_made(self, end: float) -> dict[str, Any]:
        assert self.thumbnails is not None and self.options.thumbnails is not None
        made = self.thumbnails.finish(end)
        return {"playlist": f"{THUMBNAILS_FOLDER}/{THUMBNAILS_PLAYLIST}" if made else None,
                "interval": self.options.thumbnails.interval,
                "format": self.options.thumbnails.image_format,
                "images": [{"name": f"{THUMBNAILS_FOLDER}/{t.name}", "at": round(t.at, 3)}
                           for t in made]}

    def progress(self) -> dict[str, Any]:
        segments = self.pipeline.writer.segments
        return {
            "folder": str(self.folder),
            "started_at": self.started_at.isoformat(timespec="milliseconds"),
            "segments": len(segments),
            "bytes": sum(segment.bytes for segment in segments),
            "duration": round(sum(segment.duration for segment in segments), 3),
            "keyframe_requests": self.pipeline.stats.keyframe_requests,
            "first_segment_after_activation": self.first_segment_after,
        }
