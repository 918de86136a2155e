"""One participant's recording: the shell between the room client and HLS.

Connecting → Buffering → HandshakeReady → RecordingPending → Recording → Finalizing →
Done (see ``state.py``). When and on what the recording starts is decided by the pure
``StartPolicy`` (``start.py``: activation, the keyframe, the sender reports), and how
audio and video are lined up by ``align_start`` (``timeline.py``); this shell feeds
them the events with the time of its clock, does what they say, owns the one timer the
policy asks for, and the pre-buffer; once begun, ``Recording`` (``recording.py``) holds
what is written. Clock and scheduler are injectable: the start is tested without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from ..hls.tsformat import CLOCK
from ..media.rtp import SenderReport
from ..media.track import RemoteTrack
from ..media.units import AccessUnit, AudioPacket
from .options import RecorderOptions
from .prebuffer import PreBuffer
from .recording import Participant, Recording, Upload
from .segmenting import SegmentPolicy
from .start import KEYFRAME_WAIT, Do, StartPolicy, report_wait_for
from .state import State
from .summary import recorded_codec
from .timeline import (
    AUDIO_RATE,
    VIDEO_RATE,
    TrackStart,
    align_start,
    clock_from_arrival,
    clock_from_report,
)

__all__ = ["Recorder", "RecorderOptions", "Upload"]

logger = logging.getLogger(__name__)

ARRIVAL_SAMPLES = 256  # (rtp, arrival) pairs kept per track to anchor arrival clocks


class Timer(Protocol):
    def cancel(self) -> None: ...


# Calls ``callback`` when the recorder's clock reads ``at`` (or soon after).
Scheduler = Callable[[float, Callable[[], None]], Timer]


def loop_scheduler(clock: Callable[[], float]) -> Scheduler:
    """The running event loop's timers, for a recorder on that loop."""
    def schedule(at: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, at - clock()), callback)
    return schedule


class Recorder:
    """A ``MediaConsumer``; see the module docstring. ``clock`` is the clock of the
    units' arrival times (``time.monotonic``); ``schedule`` sets timers on it."""

    def __init__(self, room: str, participant: str, options: RecorderOptions, *,
                 request_keyframe: Callable[[], None],
                 sender_report: Callable[[str], SenderReport | None],
                 end_recording: Callable[[str], None] = lambda reason: None,
                 upload: Upload | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 schedule: Scheduler | None = None) -> None:
        self.room, self.participant = room, participant
        self.options = options
        self._log = logging.LoggerAdapter(logger, {"room": room, "participant": participant})
        self._who = Participant(room, participant, request_keyframe, sender_report,
                                 end_recording, self._log)
        self._request_keyframe = request_keyframe
        self._sender_report = sender_report
        self.upload = upload
        self._clock = clock
        self._schedule = schedule or loop_scheduler(clock)
        self._timer: Timer | None = None
        self._timer_at: float | None = None
        self._start = StartPolicy(auto_activate=options.auto_activate,
                                  expected_kinds=options.expected_kinds,
                                  report_wait=report_wait_for(options.segment_duration))
        self._failure: str | None = None  # why it could not begin
        self.tracks: dict[str, RemoteTrack] = {}  # every track seen, by sid
        self.not_recorded: list[dict[str, str]] = []  # tracks left out (their codec)
        self._video_sid: str | None = None
        self._video_pending = False  # frames of it still being transcoded
        self._audio_sid: str | None = None
        self._prebuffer = PreBuffer()
        self._recording: Recording | None = None
        # An audio track whose timeline is set by its next packet: "first" or "republished"
        self._audio_clock_pending: str | None = None
        # Begun by arrival times before the sender reports came: the RTP timestamp of
        # the first keyframe (t=0), to place the audio by them once they come.
        self._reports_awaited_for: int | None = None
        self._hold_policy: SegmentPolicy | None = None
        self._arrivals: dict[str, deque[tuple[int, float]]] = {
            kind: deque(maxlen=ARRIVAL_SAMPLES) for kind in ("audio", "video")}
        self.aligned_by: str | None = None  # what placed audio and video on one timeline
        self.summary: dict[str, Any] | None = None
        self.nothing_recorded: str | None = None  # why, when it ended with no recording

    @property
    def state(self) -> State:
        return self._start.state

    @property
    def activated(self) -> bool:
        return self._start.activated_at is not None

    @property
    def folder(self) -> Path | None:
        return self._recording.folder if self._recording is not None else None

    @property
    def failure(self) -> str | None:
        return self._recording.failure if self._recording is not None else self._failure

    # --- MediaConsumer -----------------------------------------------------------------

    def on_track_started(self, track: RemoteTrack) -> None:
        if self.state in (State.FINALIZING, State.DONE):
            return
        recording = self._recording
        if recording is not None and recording.pipeline.has_video and track.kind == "video" \
                and recorded_codec(track) != recording.pipeline.video_codec:
            self.on_track_unsupported(track, f"{track.recorded_codec} video republished into "
                                      f"a {recording.pipeline.video_codec} recording")
            return
        self.tracks[track.sid] = track
        if track.kind == "video":
            republished = self._video_sid is not None and self._video_sid != track.sid
            self._video_sid = track.sid
            if republished and recording is not None:
                recording.video_sid = track.sid
                recording.pipeline.video_timeline = None  # placed at its first keyframe
        else:
            republished = self._audio_sid is not None and self._audio_sid != track.sid
            self._audio_sid = track.sid
            if republished and recording is not None:
                recording.audio_sid = track.sid
                self._audio_clock_pending = "republished"
        if republished:  # the reports awaited were of the tracks that began it
            self._reports_awaited_for = None
        self._do(self._start.track_started(track.sid, track.kind, self._clock()))

    def on_track_ended(self, track_sid: str) -> None:
        self._start.track_ended(track_sid)

    def on_track_unsupported(self, track: RemoteTrack, reason: str) -> None:
        # Never silently: the summary says what was published and left out, and why.
        self.not_recorded.append({"sid": track.sid, "kind": track.kind,
                                  "codec": track.mime_type, "reason": reason})
        given_up = {entry["sid"] for entry in self.not_recorded}
        if track.sid in self.tracks and self.tracks.keys() <= given_up:
            # Every track it was given turned out unrecordable once flowing (none of
            # their frames decrypts, say): nothing more will come. Said, not waited out.
            self._log.error("no track left to record (%s); ending", reason)
            self._failure = reason
            if self._recording is not None and self._recording.failure is None:
                self._recording.failure = reason
            self._who.end_recording(reason)

    def on_video(self, track_sid: str, unit: AccessUnit) -> None:
        if track_sid != self._video_sid:
            return
        if self.state is State.RECORDING:
            if self._recording is not None:  # (None: it could not begin, and is ending)
                self._recording.video(unit)
            return
        self._arrivals["video"].append((unit.rtp_timestamp, unit.arrival))
        self._prebuffer.add_video(unit)
        pending = self._start.pending
        actions = self._start.video(keyframe=unit.starts_stream,
                                    reports_ready=pending and self._reports_for_all_tracks())
        if pending and Do.START not in actions:
            self._keep_segments_short(unit)
        self._do(actions)

    def on_video_pending(self, track_sid: str, pending: bool) -> None:
        if track_sid != self._video_sid:
            return
        self._video_pending = pending
        if self.state is State.RECORDING and self._recording is not None:
            self._recording.video_pending(pending)

    def on_audio(self, track_sid: str, packet: AudioPacket) -> None:
        if track_sid != self._audio_sid:
            return
        if self.state is State.RECORDING:
            if self._recording is None:
                return
            if self._audio_clock_pending:
                self._recording.place(packet.rtp_timestamp, packet.arrival, self._audio_sid,
                                      AUDIO_RATE, self._audio_clock_pending == "republished")
                self._audio_clock_pending = None
            elif self._reports_awaited_for is not None and self._reports_for_all_tracks():
                self._move_audio_to_reports(packet)
            self._recording.audio(packet)
        elif actions := self._start.audio(video_expected=self._video_sid is not None):
            self._do(actions, packet)
        elif self.state not in (State.FINALIZING, State.DONE):
            self._arrivals["audio"].append((packet.rtp_timestamp, packet.arrival))
            self._prebuffer.add_audio(packet)

    # --- control -----------------------------------------------------------------------

    def activate(self) -> None:
        """Start recording at the next keyframe (see ``start.py``)."""
        if actions := self._start.activate(self._clock()):
            self._log.info("recording activated; waiting for a keyframe")
            self._do(actions)

    def finalize(self, reason: str = "stopped",
                 extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Close the last segment with its true duration, end the playlist, write
        ``recording.json``. Returns the summary (None if nothing was recorded)."""
        if self.state in (State.FINALIZING, State.DONE):
            return self.summary
        held = len(self._prebuffer.video)
        if actions := self._start.stop(buffered_keyframe=self._prebuffer.keyframe is not None):
            # Activated but not begun (the publisher left while the sender reports were
            # awaited, say): what is held from its keyframe on is written.
            self._log.info("ending before the recording began; writing the %d frames held",
                           held)
        self._do(actions)
        if self._recording is not None:
            self.summary = self._recording.finish(reason, self.tracks, self.not_recorded,
                                                  self.aligned_by, extra or {})
        elif self._failure is None:
            self.nothing_recorded = self._why_nothing()
        else:
            self.nothing_recorded = self._failure
        self._start.finished()
        return self.summary

    def _why_nothing(self) -> str:
        if not self.tracks:
            return "no track was received"
        if not self.activated:
            return "the recording was never activated"
        return ("activated, but no keyframe came to start on" if self._audio_sid is None
                else "activated, but neither a keyframe nor audio came to start on")

    def progress(self) -> dict[str, Any]:
        """Where the recording stands, cheaply: for the worker's listing and metrics."""
        begun = self._recording.progress() if self._recording is not None else {
            "folder": None, "started_at": None, "segments": 0, "bytes": 0, "duration": 0.0,
            "keyframe_requests": 0, "first_segment_after_activation": None}
        return {"state": self.state.name.lower(), **begun, "aligned_by": self.aligned_by}

    # --- the start policy's shell ------------------------------------------------------

    def _do(self, actions: list[Do], packet: AudioPacket | None = None) -> None:
        """Carry out what the start policy decided, then set its next timer."""
        for action in actions:
            if action is Do.REQUEST_KEYFRAME:
                self._request_keyframe()
            elif action is Do.HOLD:
                self._prebuffer.hold()
            elif action is Do.HOLD_BUFFERED:
                self._log.info("no keyframe came within %.1f s of activation; starting from "
                               "the buffered one", KEYFRAME_WAIT)
                self._prebuffer.hold()
            else:
                self._begin_recording(action, packet)
        self._arm()

    def _arm(self) -> None:
        at = self._start.deadline()
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = None if at is None else self._schedule(at, self._tick)

    def _tick(self) -> None:
        self._timer = self._timer_at = None
        self._do(self._start.tick(self._clock(),
                                  buffered_keyframe=self._prebuffer.keyframe is not None,
                                  reports_ready=self._reports_for_all_tracks(),
                                  audio_held=bool(self._prebuffer.audio)))

    def _begin_recording(self, action: Do, packet: AudioPacket | None) -> None:
        """A failure to begin (the folder cannot be made, say) ends this recording only."""
        try:
            if action is Do.START:
                self._start_from_prebuffer()
            elif action is Do.START_WITHOUT_VIDEO:
                self._start_without_video(packet)
            else:
                assert packet is not None
                self._start_audio_only(packet)
        except Exception as exc:
            self._failure = f"the recording could not start: {exc}"
            self._log.error("%s", self._failure, exc_info=exc)
            self._who.end_recording(self._failure)
        self._prebuffer = PreBuffer()

    def _keep_segments_short(self, unit: AccessUnit) -> None:
        """While held media waits for sender reports, ask for keyframes where segments
        will end, as the pipeline would: the held media is cut later, on its keyframes."""
        keyframe = self._prebuffer.keyframe
        if keyframe is None or not self._start.holding:
            return
        if self._hold_policy is None:
            self._hold_policy = SegmentPolicy(target=round(self.options.segment_duration * CLOCK),
                                              retry=CLOCK)
        pts = unit.rtp_timestamp - keyframe.rtp_timestamp
        if unit.keyframe:
            self._hold_policy.on_video(pts, True)
        elif self._hold_policy.wants_keyframe(pts):
            self._request_keyframe()

    def _reports_for_all_tracks(self) -> bool:
        sids = [s for s in (self._video_sid, self._audio_sid) if s is not None]
        return all(self._sender_report(s) is not None for s in sids)

    def _open(self, arrival: float, ntp_origin: float | None, *,
              video_joins: bool = False) -> Recording:
        video = self.tracks.get(self._video_sid or "")
        if video is not None and self._start.video_missing and not video_joins:
            video = None  # started without it, and it cannot join: an audio-only recording
        self._recording = Recording(
            self._who, self.options, video=video, audio=self.tracks.get(self._audio_sid or ""),
            arrival=arrival, ntp_origin=ntp_origin, clock=self._clock,
            activated_at=self._start.activated_at, upload=self.upload,
            video_missing=self._start.video_missing)
        self._recording.video_pending(self._video_pending)
        return self._recording

    def _start_from_prebuffer(self) -> None:
        """Begin the recording at the held keyframe and replay what was held."""
        assert self._video_sid is not None
        keyframe = self._prebuffer.video[0]
        use_reports = self._reports_for_all_tracks()

        def start_of(sid: str, first: AccessUnit | AudioPacket, kind: str) -> TrackStart:
            return TrackStart((first.rtp_timestamp, first.arrival), self._arrivals[kind],
                              self._sender_report(sid) if use_reports else None)

        first_audio = self._prebuffer.audio[0] if self._prebuffer.audio else None
        alignment = align_start(
            start_of(self._video_sid, keyframe, "video"),
            start_of(self._audio_sid, first_audio, "audio")
            if self._audio_sid is not None and first_audio is not None else None)
        self.aligned_by = alignment.aligned_by
        pipeline = self._open(keyframe.arrival,
                              alignment.origin if alignment.by_reports else None).pipeline
        pipeline.set_video_timeline(keyframe.rtp_timestamp)
        if not alignment.by_reports and self._audio_sid is not None:
            self._reports_awaited_for = keyframe.rtp_timestamp
        if alignment.audio_clock is not None and first_audio is not None:
            pipeline.place_audio(alignment.audio_clock, alignment.origin, restart=False)
            self._log_alignment(keyframe, first_audio, alignment.audio_clock.seconds_at(
                first_audio.rtp_timestamp) - alignment.origin, alignment.by_reports)
        elif self._audio_sid is not None:
            self._audio_clock_pending = "first"
        # Replay what was held as it arrived, as if it were arriving now (the interleaver
        # judges streams by arrival): the two streams merged by arrival, each in the
        # order it came. (Sorting would not do: a frame completed by a late
        # retransmission carries a later arrival than the frame after it, which the
        # reassembler handed on after it; put first, that one would make the late one
        # look out of order and be dropped, and every picture after it undecodable.)
        held: Iterable[AccessUnit | AudioPacket] = heapq.merge(
            self._prebuffer.video, self._prebuffer.audio, key=lambda item: item.arrival)
        for item in held:
            if isinstance(item, AccessUnit):
                pipeline.video(item)
            else:
                pipeline.audio(item)

    def _move_audio_to_reports(self, packet: AudioPacket) -> None:
        """The recording began by arrival times (the reports came later than its first
        segment could wait): now that they are here, the audio goes where they put it,
        relative to the same first keyframe, and tracks that join later are placed by
        them too. Only the audio moves: the video's timeline is its own RTP clock."""
        assert self._recording is not None and self._reports_awaited_for is not None
        assert self._video_sid is not None and self._audio_sid is not None
        video_report = self._sender_report(self._video_sid)
        audio_report = self._sender_report(self._audio_sid)
        assert video_report is not None and audio_report is not None
        keyframe_rtp, self._reports_awaited_for = self._reports_awaited_for, None
        origin = clock_from_report(video_report, keyframe_rtp, VIDEO_RATE).seconds_at(
            keyframe_rtp)
        clock = clock_from_report(audio_report, packet.rtp_timestamp, AUDIO_RATE)
        move = self._recording.pipeline.move_audio(clock, origin)
        self._recording.origin = (self._recording.origin[0], origin)
        self.aligned_by = "arrival times, then sender reports"
        self._log.info("sender reports came after the start: %s",
                       f"the audio moves by {move * 1000:+.0f} ms at its next pause" if move
                       else "arrival times had the audio where they put it")

    def _log_alignment(self, keyframe: AccessUnit, audio: AudioPacket, audio_at: float,
                       use_reports: bool) -> None:
        """How far the sender reports put audio from where arrival times would: the
        network's A/V skew. Large values are worth seeing in the log."""
        by_arrival = audio.arrival - keyframe.arrival
        self._log.info("audio placed by %s at %+.0f ms from the first keyframe (arrival "
                       "times say %+.0f ms)", "sender reports" if use_reports else "arrival",
                       audio_at * 1000, by_arrival * 1000)

    def _start_without_video(self, packet: AudioPacket | None) -> None:
        """No usable keyframe came: begin on the audio held (the last second of it) or
        on ``packet``, by its sender report if it has one; the video joins at its first
        keyframe, placed by its own report or arrival (``Recording.video``), after a
        DISCONTINUITY. fMP4 declares its tracks once, in its init segment: there the
        video stays out."""
        assert self._audio_sid is not None and self._video_sid is not None
        joins = Recording.video_can_join(self.options)
        self._log.warning("%s; recording the audio %s", self._start.video_missing,
                          "until the video gives one" if joins else "alone")
        if not joins:
            self.on_track_unsupported(self.tracks[self._video_sid],
                                      f"{self._start.video_missing}, and an fMP4 recording "
                                      "cannot add a track once begun")
        held = [*self._prebuffer.audio, *([packet] if packet is not None else [])]
        first = held[0]
        alignment = align_start(None, TrackStart(
            (first.rtp_timestamp, first.arrival), self._arrivals["audio"],
            self._sender_report(self._audio_sid)))
        assert alignment.audio_clock is not None
        self.aligned_by = alignment.aligned_by
        pipeline = self._open(first.arrival, alignment.origin if alignment.by_reports
                              else None, video_joins=joins).pipeline
        pipeline.place_audio(alignment.audio_clock, alignment.origin, restart=False)
        for packet in held:
            pipeline.audio(packet)

    def _start_audio_only(self, packet: AudioPacket) -> None:
        self.aligned_by = "arrival times"
        pipeline = self._open(packet.arrival, None).pipeline
        pipeline.place_audio(clock_from_arrival(packet.rtp_timestamp, packet.arrival,
                                                AUDIO_RATE), packet.arrival, restart=False)
        pipeline.audio(packet)
