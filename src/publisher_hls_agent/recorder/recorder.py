"""One participant's recording: the state machine between the room client and HLS.

Connecting → Buffering → HandshakeReady → RecordingPending → Recording → Finalizing →
Done (see ``state.py``). Before activation the recorder keeps a pre-buffer: the video
since the latest keyframe and the audio of that span. Activation asks for a keyframe
and the recording starts on it; if none comes within ``KEYFRAME_WAIT``, it starts on
the buffered one instead, so a publisher with a long keyframe interval that ignores
PLIs still gets a recording that starts on a keyframe, with its audio. With no keyframe
buffered either, it asks again every ``KEYFRAME_WAIT`` until one comes.

Audio and video are lined up by the RTCP sender reports (what the publisher says its
clocks were); arrival times are skewed by the video's encoding and pacing delay, and at
the start of a stream by bursts. LiveKit forwards the first reports some 3 s after a
subscription, so a recording activated that early holds everything from its keyframe
on and waits up to ``REPORT_WAIT`` for them before it writes anything; nothing is lost,
the first segment only comes later. Without reports by then, arrival times anchor each
track's clock on its least-delayed packet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..config import Config
from ..hls.files import atomic_write
from ..hls.fmp4_writer import Fmp4HlsWriter
from ..hls.mpegts import Streams
from ..hls.names import create_recording_folder
from ..hls.tsformat import CLOCK
from ..hls.writer import SegmentedWriter, SegmentRecord, TsHlsWriter
from ..layout import SUMMARY_NAME
from ..media.rtp import SenderReport
from ..media.track import RemoteTrack
from ..media.units import AccessUnit, AudioPacket
from .pipeline import RecordingPipeline
from .prebuffer import PreBuffer
from .segmenting import SegmentPolicy
from .state import Lifecycle, State
from .timeline import (
    AUDIO_RATE,
    VIDEO_RATE,
    TrackClock,
    clock_from_arrival,
    clock_from_arrivals,
    clock_from_report,
)

logger = logging.getLogger(__name__)

KEYFRAME_WAIT = 1.0  # after activation, at most, for a fresh keyframe
REPORT_WAIT = 5.0  # after activation, at most, for every track's first sender report
ARRIVAL_SAMPLES = 256  # (rtp, arrival) pairs kept per track to anchor arrival clocks
TRACK_WAIT = 3.0  # auto activation waits this long for every expected track
NTP_TO_UNIX = 2_208_988_800
MAX_PIPELINE_RESTARTS = 3  # failures inside the pipeline beyond this end the recording

Unit = TypeVar("Unit", AccessUnit, AudioPacket)


class Upload(Protocol):
    """Where the recording's files go as they are written (``storage/uploader.py``)."""

    def started(self, folder: Path) -> None: ...
    def segment_closed(self, segment: SegmentRecord, playlist: bytes) -> None: ...
    def finished(self) -> None: ...


@dataclass(frozen=True)
class RecorderOptions:
    output_dir: Path
    segment_duration: float = 2.0
    max_segments: int = 0
    auto_activate: bool = False
    keep_opus: bool = False  # Opus kept (in fMP4 segments) instead of AAC (in MPEG-TS)
    expected_kinds: frozenset[str] = frozenset({"audio", "video"})

    @classmethod
    def from_config(cls, config: Config) -> RecorderOptions:
        return cls(output_dir=config.output_dir, segment_duration=config.segment_duration,
                   max_segments=config.max_segments, auto_activate=config.auto_activate,
                   keep_opus=config.segment_format == "fmp4")


class Recorder:
    """A ``MediaConsumer``; see the module docstring."""

    def __init__(self, room: str, participant: str, options: RecorderOptions, *,
                 request_keyframe: Callable[[], None],
                 sender_report: Callable[[str], SenderReport | None],
                 end_recording: Callable[[str], None] = lambda reason: None,
                 upload: Upload | None = None) -> None:
        self.room, self.participant = room, participant
        self.options = options
        self._request_keyframe = request_keyframe
        self._sender_report = sender_report
        self._end_recording = end_recording  # asks the session to stop, with a reason
        self.upload = upload
        self._failures = 0
        self.failure: str | None = None  # why the recording ended in failure
        self._activated_at: float | None = None  # time.monotonic()
        self.first_segment_after: float | None = None  # seconds from activation to disk
        self.lifecycle = Lifecycle()
        self.tracks: dict[str, RemoteTrack] = {}  # every track seen, by sid
        self.not_recorded: list[dict[str, str]] = []  # tracks left out (their codec)
        self._live: set[str] = set()
        self._video_sid: str | None = None
        self._audio_sid: str | None = None
        self._prebuffer = PreBuffer()
        self._pipeline: RecordingPipeline | None = None
        self._origin: tuple[float, float | None] | None = None  # (arrival, ntp) of t=0
        # An audio track whose timeline is set by its next packet: "first" or "republished"
        self._audio_clock_pending: str | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._reports_waited = False
        self._hold_policy: SegmentPolicy | None = None
        self._arrivals: dict[str, deque[tuple[int, float]]] = {
            kind: deque(maxlen=ARRIVAL_SAMPLES) for kind in ("audio", "video")}
        self.folder: Path | None = None
        self.started_at: datetime | None = None
        self.aligned_by: str | None = None  # what placed audio and video on one timeline
        self.summary: dict[str, Any] | None = None
        self._log = logging.LoggerAdapter(logger, {"room": room, "participant": participant})

    @property
    def state(self) -> State:
        return self.lifecycle.state

    # --- MediaConsumer -----------------------------------------------------------------

    def on_track_started(self, track: RemoteTrack) -> None:
        if self.state in (State.FINALIZING, State.DONE):
            return
        if self._pipeline is not None and self._pipeline.has_video and track.kind == "video" \
                and _recorded_codec(track) != self._pipeline.video_codec:
            self.on_track_unsupported(track, f"{track.recorded_codec} video republished into "
                                      f"a {self._pipeline.video_codec} recording")
            return
        self.tracks[track.sid] = track
        self._live.add(track.sid)
        if track.kind == "video":
            republished = self._video_sid is not None and self._video_sid != track.sid
            self._video_sid = track.sid
            self._request_keyframe()
            if republished and self._pipeline is not None:
                self._replace_video_track()
        else:
            republished = self._audio_sid is not None and self._audio_sid != track.sid
            self._audio_sid = track.sid
            if republished and self._pipeline is not None:
                self._audio_clock_pending = "republished"
        if self.state is State.CONNECTING:
            self.lifecycle.to(State.BUFFERING)
            if self.options.auto_activate:
                self._later(TRACK_WAIT, self.activate)
        if self.options.auto_activate and self._all_expected_tracks():
            self.activate()

    def on_track_ended(self, track_sid: str) -> None:
        self._live.discard(track_sid)

    def on_track_unsupported(self, track: RemoteTrack, reason: str) -> None:
        # Never silently: the summary says what was published and left out, and why.
        self.not_recorded.append({"sid": track.sid, "kind": track.kind,
                                  "codec": track.mime_type, "reason": reason})

    def on_video(self, track_sid: str, unit: AccessUnit) -> None:
        if track_sid != self._video_sid:
            return
        state = self.state
        if state is State.RECORDING:
            assert self._pipeline is not None
            if self._pipeline.video_timeline is None:
                self._place_republished_video(unit)
            self._guarded(self._pipeline.video, unit)
            return
        if unit.keyframe and unit.has_parameter_sets and state is State.BUFFERING:
            self.lifecycle.to(State.HANDSHAKE_READY)
        self._arrivals["video"].append((unit.rtp_timestamp, unit.arrival))
        self._prebuffer.add_video(unit)
        if state is State.RECORDING_PENDING:
            if unit.keyframe and unit.has_parameter_sets and not self._prebuffer.holding:
                self._prebuffer.hold()  # the recording starts here
            self._keep_segments_short(unit)
            self._maybe_start()

    def on_audio(self, track_sid: str, packet: AudioPacket) -> None:
        if track_sid != self._audio_sid:
            return
        if self.state is State.RECORDING:
            assert self._pipeline is not None
            if self._audio_clock_pending:
                self._place_audio(packet, restart=self._audio_clock_pending == "republished")
            self._guarded(self._pipeline.audio, packet)
        elif self.state is State.RECORDING_PENDING and self._video_sid is None:
            self._start_audio_only(packet)
        elif self.state not in (State.FINALIZING, State.DONE):
            self._arrivals["audio"].append((packet.rtp_timestamp, packet.arrival))
            self._prebuffer.add_audio(packet)

    # --- control -----------------------------------------------------------------------

    def activate(self) -> None:
        """Start recording at the next keyframe (see the module docstring)."""
        if self.state not in (State.BUFFERING, State.HANDSHAKE_READY):
            return
        self.lifecycle.to(State.RECORDING_PENDING)
        self._activated_at = time.monotonic()
        self._log.info("recording activated; waiting for a keyframe")
        self._request_keyframe()
        self._later(KEYFRAME_WAIT, self._settle_for_buffered_keyframe)
        self._later(REPORT_WAIT, self._stop_waiting_for_reports)

    def finalize(self, reason: str = "stopped",
                 extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Close the last segment with its true duration, end the playlist, write
        ``recording.json``. Returns the summary (None if nothing was recorded)."""
        if self.state in (State.FINALIZING, State.DONE):
            return self.summary
        for timer in self._timers:
            timer.cancel()
        self._write_what_is_held()
        self.lifecycle.to(State.FINALIZING)
        if self._pipeline is not None:
            end = self._pipeline.finish()
            self._pipeline.writer.finish(end)
            self.summary = self._summary(reason, end, extra or {})
            assert self.folder is not None
            atomic_write(self.folder / SUMMARY_NAME,
                         (json.dumps(self.summary, indent=2) + "\n").encode())
            if self.upload is not None:
                self.upload.finished()
            self._log.info("recording finalized (%s): %d segments, %.1f s in %s", reason,
                           len(self.summary["segments"]), self.summary["duration"], self.folder)
        self.lifecycle.to(State.DONE)
        return self.summary

    def _write_what_is_held(self) -> None:
        """An activated recording that ends before it began (the publisher left while
        the sender reports were awaited, say) still writes the media it holds from its
        keyframe on, lined up by arrival times where the reports never came."""
        if self.state is not State.RECORDING_PENDING or self._prebuffer.keyframe is None:
            return
        if not self._prebuffer.holding:
            self._prebuffer.hold()
        self._log.info("ending before the recording began; writing the %d frames held",
                       len(self._prebuffer.video))
        self._start_from_prebuffer()

    def _guarded(self, feed: Callable[[Unit], None], item: Unit) -> None:
        """Feed the pipeline; a failure inside it (the transcoder, the muxer, the disk)
        restarts it, and only repeated failures end the recording."""
        try:
            feed(item)
        except Exception as exc:
            self._pipeline_failed(exc)

    def _pipeline_failed(self, exc: Exception) -> None:
        assert self._pipeline is not None
        self._failures += 1
        if self._failures > MAX_PIPELINE_RESTARTS:
            self.failure = f"the pipeline failed {self._failures} times, last: {exc!r}"
            self._log.error("%s; ending the recording", self.failure, exc_info=exc)
            self._end_recording(self.failure)
            return
        self._log.error("the pipeline failed (%r); restarting it at the next keyframe "
                        "(%d of %d restarts)", exc, self._failures, MAX_PIPELINE_RESTARTS,
                        exc_info=exc)
        try:
            self._pipeline.restart()
        except Exception as again:
            self._pipeline_failed(again)

    def _segment_closed(self, segment: SegmentRecord, playlist: bytes) -> None:
        if self.first_segment_after is None and self._activated_at is not None:
            self.first_segment_after = round(time.monotonic() - self._activated_at, 3)
        if self.upload is not None:
            self.upload.segment_closed(segment, playlist)

    def progress(self) -> dict[str, Any]:
        """Where the recording stands, cheaply: for the worker's listing and metrics."""
        segments = self._pipeline.writer.segments if self._pipeline is not None else []
        stats = self._pipeline.stats if self._pipeline is not None else None
        return {
            "state": self.state.name.lower(),
            "folder": str(self.folder) if self.folder is not None else None,
            "started_at": (self.started_at.isoformat(timespec="milliseconds")
                           if self.started_at is not None else None),
            "segments": len(segments),
            "bytes": sum(segment.bytes for segment in segments),
            "duration": round(sum(segment.duration for segment in segments), 3),
            "keyframe_requests": stats.keyframe_requests if stats is not None else 0,
            "first_segment_after_activation": self.first_segment_after,
            "aligned_by": self.aligned_by,
        }

    # --- starting ----------------------------------------------------------------------

    def _all_expected_tracks(self) -> bool:
        kinds = {self.tracks[sid].kind for sid in self._live}
        return self.options.expected_kinds <= kinds

    def _later(self, delay: float, callback: Callable[[], None]) -> None:
        self._timers.append(asyncio.get_running_loop().call_later(delay, callback))

    def _settle_for_buffered_keyframe(self) -> None:
        if self.state is not State.RECORDING_PENDING or self._prebuffer.holding:
            return
        if self._prebuffer.keyframe is not None:
            self._log.info("no keyframe came within %.1f s of activation; starting from "
                           "the buffered one", KEYFRAME_WAIT)
            self._prebuffer.hold()
            self._maybe_start()
            return
        # No keyframe at all yet: the one the server asked for at subscription can pass
        # before our receiver listens, and a request made before the track's first packet
        # reaches no one (nor does one the server drops as too soon after its own). A
        # publisher that sends keyframes only when asked would never start: ask again.
        self._request_keyframe()
        self._later(KEYFRAME_WAIT, self._settle_for_buffered_keyframe)

    def _stop_waiting_for_reports(self) -> None:
        self._reports_waited = True
        self._maybe_start()

    def _keep_segments_short(self, unit: AccessUnit) -> None:
        """While held media waits for sender reports, ask for keyframes where segments
        will end, as the pipeline would: the held media is cut later, on its keyframes."""
        keyframe = self._prebuffer.keyframe
        if keyframe is None or not self._prebuffer.holding:
            return
        if self._hold_policy is None:
            self._hold_policy = SegmentPolicy(target=round(self.options.segment_duration * CLOCK),
                                              retry=CLOCK)
        pts = unit.rtp_timestamp - keyframe.rtp_timestamp
        if unit.keyframe:
            self._hold_policy.on_video(pts, True)
        elif self._hold_policy.wants_keyframe(pts):
            self._request_keyframe()

    def _maybe_start(self) -> None:
        """Start once there is a keyframe to start on and a way to line audio up."""
        if self.state is State.RECORDING_PENDING and self._prebuffer.holding and (
                self._reports_waited or self._reports_for_all_tracks()):
            self._start_from_prebuffer()

    def _clock(self, sid: str, samples: list[tuple[int, float]], rate: int,
               use_reports: bool) -> TrackClock:
        """A track's clock from its sender report, or else from arrival times."""
        report = self._sender_report(sid) if use_reports else None
        if report is not None:
            return clock_from_report(report, samples[0][0], rate)
        return clock_from_arrivals(samples, rate)

    def _reports_for_all_tracks(self) -> bool:
        sids = [s for s in (self._video_sid, self._audio_sid) if s is not None]
        return all(self._sender_report(s) is not None for s in sids)

    def _start_from_prebuffer(self) -> None:
        """Begin the recording at the held keyframe and replay what was held."""
        assert self._video_sid is not None
        keyframe = self._prebuffer.video[0]
        use_reports = self._reports_for_all_tracks()
        self.aligned_by = "sender reports" if use_reports else "arrival times"
        video_samples = [(keyframe.rtp_timestamp, keyframe.arrival), *self._arrivals["video"]]
        video_clock = self._clock(self._video_sid, video_samples, VIDEO_RATE, use_reports)
        origin = video_clock.seconds_at(keyframe.rtp_timestamp)
        self._begin(keyframe.arrival, origin if use_reports else None)
        assert self._pipeline is not None
        self._pipeline.set_video_timeline(keyframe.rtp_timestamp)
        if self._audio_sid is not None and self._prebuffer.audio:
            first = self._prebuffer.audio[0]
            audio_samples = [(first.rtp_timestamp, first.arrival), *self._arrivals["audio"]]
            audio_clock = self._clock(self._audio_sid, audio_samples, AUDIO_RATE, use_reports)
            self._pipeline.place_audio(audio_clock, origin, restart=False)
            self._log_alignment(keyframe, first, audio_clock.seconds_at(first.rtp_timestamp)
                                - origin, use_reports)
        elif self._audio_sid is not None:
            self._audio_clock_pending = "first"
        # Replay what was held in the order it arrived, as if it were arriving now: the
        # interleaver judges streams by arrival.
        pipeline = self._pipeline
        held: list[tuple[float, int, AccessUnit | AudioPacket]] = [
            (unit.arrival, 0, unit) for unit in self._prebuffer.video]
        held += [(packet.arrival, 1, packet) for packet in self._prebuffer.audio]
        for _, _, item in sorted(held, key=lambda entry: entry[:2]):
            if isinstance(item, AccessUnit):
                pipeline.video(item)
            else:
                pipeline.audio(item)
        self._prebuffer = PreBuffer()

    def _log_alignment(self, keyframe: AccessUnit, audio: AudioPacket, audio_at: float,
                       use_reports: bool) -> None:
        """How far the sender reports put audio from where arrival times would: the
        network's A/V skew. Large values are worth seeing in the log."""
        by_arrival = audio.arrival - keyframe.arrival
        self._log.info("audio placed by %s at %+.0f ms from the first keyframe (arrival "
                       "times say %+.0f ms)", "sender reports" if use_reports else "arrival",
                       audio_at * 1000, by_arrival * 1000)

    def _start_audio_only(self, packet: AudioPacket) -> None:
        self.aligned_by = "arrival times"
        self._begin(packet.arrival, None)
        assert self._pipeline is not None
        self._pipeline.place_audio(clock_from_arrival(packet.rtp_timestamp, packet.arrival,
                                                      AUDIO_RATE), packet.arrival, restart=False)
        self._pipeline.audio(packet)
        self._prebuffer = PreBuffer()

    def _begin(self, arrival: float, ntp_origin: float | None) -> None:
        """Create the folder, the writer and the pipeline; t=0 is ``arrival``."""
        if ntp_origin is not None:
            self.started_at = datetime.fromtimestamp(ntp_origin - NTP_TO_UNIX, UTC)
        else:
            self.started_at = datetime.fromtimestamp(time.time() - (time.monotonic() - arrival),
                                                     UTC)
        self._origin = (arrival, ntp_origin)
        self.folder = create_recording_folder(self.options.output_dir, self.room,
                                              self.participant, self.started_at)
        if self.upload is not None:
            self.upload.started(self.folder)
        has_video = self._video_sid is not None
        has_audio = self._audio_sid is not None
        audio = self.tracks.get(self._audio_sid or "")
        channels = 2 if audio is not None and audio.stereo else 1
        writer = self._writer(has_video, has_audio, channels)
        self._pipeline = RecordingPipeline(
            writer, has_video=has_video, has_audio=has_audio,
            segment_duration=self.options.segment_duration, audio_channels=channels,
            keep_opus=self.options.keep_opus, request_keyframe=self._request_keyframe,
            video_codec=self._video_codec())
        self.lifecycle.to(State.RECORDING)
        self._log.info("recording into %s", self.folder)

    def _writer(self, has_video: bool, has_audio: bool, channels: int) -> SegmentedWriter:
        assert self.folder is not None and self.started_at is not None
        options: dict[str, Any] = {"segment_duration": self.options.segment_duration,
                                   "max_segments": self.options.max_segments,
                                   "started_at": self.started_at,
                                   "on_segment": self._segment_closed}
        if self.options.keep_opus:
            video = self.tracks.get(self._video_sid or "")
            size = (video.width, video.height) if video is not None and video.width else None
            return Fmp4HlsWriter(self.folder, video=has_video,
                                 audio_channels=channels if has_audio else None,
                                 video_size=size, video_codec=self._video_codec(), **options)
        if self._video_codec() != "h264":  # the room client transcodes for MPEG-TS
            raise RuntimeError(f"{self._video_codec()} video cannot go into MPEG-TS")
        return TsHlsWriter(self.folder, Streams(video=has_video, audio=has_audio), **options)

    def _video_codec(self) -> str:
        return _recorded_codec(self.tracks.get(self._video_sid or ""))

    # --- tracks that come back ----------------------------------------------------------

    def _origin_seconds(self, use_reports: bool) -> float:
        assert self._origin is not None
        arrival, ntp = self._origin
        return ntp if use_reports and ntp is not None else arrival

    def _place_audio(self, packet: AudioPacket, restart: bool) -> None:
        assert self._pipeline is not None and self._audio_sid is not None and self._origin
        use_reports = self._origin[1] is not None and self._sender_report(self._audio_sid)
        clock = self._clock(self._audio_sid, [(packet.rtp_timestamp, packet.arrival)],
                            AUDIO_RATE, bool(use_reports))
        self._pipeline.place_audio(clock, self._origin_seconds(bool(use_reports)),
                                   restart=restart)
        self._audio_clock_pending = None

    def _replace_video_track(self) -> None:
        assert self._pipeline is not None
        self._pipeline.video_timeline = None  # placed at the new track's first keyframe

    def _place_republished_video(self, unit: AccessUnit) -> None:
        assert self._pipeline is not None and self._video_sid is not None and self._origin
        if not unit.keyframe:
            return
        use_reports = bool(self._origin[1] is not None and self._sender_report(self._video_sid))
        clock = self._clock(self._video_sid, [(unit.rtp_timestamp, unit.arrival)], VIDEO_RATE,
                            use_reports)
        self._pipeline.place_video(clock, self._origin_seconds(use_reports))

    # --- summary -------------------------------------------------------------------------

    def _summary(self, reason: str, end: int, extra: dict[str, Any]) -> dict[str, Any]:
        assert self._pipeline is not None and self.started_at is not None
        video = self.tracks.get(self._video_sid or "")
        audio = self.tracks.get(self._audio_sid or "")
        stats = self._pipeline.stats
        return {
            "room": self.room,
            "participant": self.participant,
            "folder": str(self.folder),
            "ended_because": reason,
            "started_at": self.started_at.isoformat(timespec="milliseconds"),
            "ended_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "duration": round(end / CLOCK, 3),
            "video": None if self._video_sid is None else _video_summary(video),
            "audio": None if self._audio_sid is None else {
                "codec": "opus" if self.options.keep_opus else "aac", "source_codec": "opus",
                "channels": 2 if audio and audio.stereo else 1,
            },
            "segment_format": "fmp4" if self.options.keep_opus else "ts",
            "segments": [{"name": s.name, "duration": round(s.duration, 6), "bytes": s.bytes,
                          "discontinuity": s.discontinuity}
                         for s in self._pipeline.writer.segments],
            "frames": {"video": stats.video_frames, "audio": stats.audio_frames,
                       "frozen": stats.frozen_frames, "dropped": stats.dropped_frames,
                       "parameter_sets_added": stats.parameter_sets_added,
                       "freezes": stats.freezes,
                       "longest_freeze": round(stats.longest_freeze, 3)},
            "keyframe_requests": stats.keyframe_requests,
            "pipeline_restarts": stats.restarts,
            "tracks_not_recorded": self.not_recorded,
            "first_segment_after_activation": self.first_segment_after,
            "aligned_by": self.aligned_by,
            **({"failure": self.failure} if self.failure else {}),
            **extra,
        }


def _recorded_codec(track: RemoteTrack | None) -> str:
    """The codec of the video units a track gives the recorder (the room client says)."""
    return track.recorded_codec if track is not None and track.recorded_codec else "h264"


def _video_summary(track: RemoteTrack | None) -> dict[str, Any]:
    """What was received (``source_codec``) and what was recorded (``codec``): the same
    when passed through, H.264 when transcoded (``room/tracks.py``). ``published_codec``
    differs from the source when the publisher's backup codec was recorded."""
    def name(mime: str) -> str:
        return mime.split("/")[-1].lower()
    source = name(track.mime_type) if track else "h264"
    codec = _recorded_codec(track)
    published = name(track.published_mime_type) if track and track.published_mime_type \
        else source
    return {"codec": codec, "source_codec": source, "published_codec": published,
            "passthrough": source == codec, "transcoded": source != codec,
            "width": track.width if track else None,
            "height": track.height if track else None}
