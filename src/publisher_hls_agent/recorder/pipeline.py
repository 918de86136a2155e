"""A running recording: timestamped media in, HLS files out.

Created by the recorder at the first keyframe. It places each access unit and audio
packet on the recording timeline, transcodes Opus to AAC (or keeps it, for fMP4),
merges the streams in presentation order, decides the segment boundaries and hands the
media to the writer. Video is never decoded: an H.264 keyframe only gets the last
SPS/PPS put in front when it came without them, so that every segment can start
decoding on its own. (VP9 and AV1 keyframes need nothing added: see ``PassthroughReader``.)
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median_low

from ..hls.aac import OpusToAac
from ..hls.audio import AudioFrame
from ..hls.opus import OpusTimeline, is_silence
from ..hls.tsformat import CLOCK
from ..hls.writer import SegmentedWriter
from ..media.units import AccessUnit, AudioPacket
from .audible import AudibleSpans
from .interleave import Interleaver
from .segmenting import SegmentPolicy
from .timeline import AUDIO_RATE, TrackClock, TrackTimeline, track_timeline

logger = logging.getLogger(__name__)

INTERLEAVE_WAIT = 1.0  # seconds without a packet before a stream counts as stopped
# A keyframe with a new picture size this soon after a segment began replaces that
# segment's start instead of cutting a segment of one frame (SegmentedWriter.
# replace_open_segment): less than two frames at 30 fps.
LAYER_SWITCH_WINDOW = CLOCK // 20
STALL = CLOCK * 7 // 10  # video this far behind audio has stopped: freeze the picture
# libopus delays what it encodes by its lookahead, 6.5 ms at 48 kHz, and RTP has no
# pre-skip to say so: the sound of RTP time t is heard 312 samples later.
OPUS_LOOKAHEAD = 312
# Moving the audio to where sender reports put it (``move_audio``) waits for a silent
# packet, where the silence it adds or the sound it skips is not heard; a publisher
# who never pauses has it done this long (seconds of arrival) after it was asked for.
AUDIO_MOVE_WAIT = 5.0
# Smaller moves than this are not made: an eighth of a 20 ms frame, not heard.
AUDIO_MOVE_LEAST = 120  # 48 kHz samples, 2.5 ms
# At the end, audio that stopped before the video (a browser's microphone ends before
# its camera as the page closes) is filled with silence to the video's end, if it
# stopped at most this long before (48 kHz samples). Beyond, the microphone had gone
# long before, and only the open segment could take the silence anyway.
END_FILL_MOST = 10 * AUDIO_RATE


@dataclass
class PipelineStats:
    video_frames: int = 0
    audio_frames: int = 0
    frozen_frames: int = 0  # repeated keyframes written while the camera sent nothing
    dropped_frames: int = 0  # not decodable (after loss, before a keyframe) or late
    late_audio_frames: int = 0  # released after the segment that should have held them
    keyframe_requests: int = 0
    discontinuities: int = 0
    restarts: int = 0  # after failures inside the pipeline
    freezes: int = 0  # gaps between real pictures a viewer notices (FreezeMeter)
    longest_freeze: float = 0.0  # seconds of media time
    video_joined_at: float | None = None  # seconds: a recording begun on audio alone
    # The longest a picture came after its arrival, beyond the usual: a transcoder
    # behind on a busy machine (AccessUnit.delay). Segments are that much late.
    most_video_delay: float = 0.0
    # Begun by arrival times: how far the audio moved once sender reports came
    # (seconds, later positive) and where (seconds of media).
    audio_moved: tuple[float, float] | None = None


class FreezeMeter:
    """Gaps between the real pictures of a recording, in media time, as libwebrtc
    counts a freeze: longer than three times the usual frame interval and than it plus
    150 ms. The usual interval is a moving average that the freezes do not enter."""

    def __init__(self, stats: PipelineStats) -> None:
        self._stats = stats
        self._last: int | None = None
        self._average: float | None = None

    def picture(self, pts: int) -> None:
        last, self._last = self._last, pts
        if last is None or pts <= last:
            return
        step = pts - last
        average = self._average
        if average is not None and step > max(3 * average, average + CLOCK * 0.15):
            self._stats.freezes += 1
            self._stats.longest_freeze = max(self._stats.longest_freeze, step / CLOCK)
            return
        self._average = step if average is None else average + (step - average) / 16

    def restart(self) -> None:
        """A discontinuity: what came before is not a neighbour of what comes after."""
        self._last = None


class RecordingPipeline:
    def __init__(self, writer: SegmentedWriter, *, has_video: bool, has_audio: bool,
                 segment_duration: float, audio_channels: int, audio_codec: str,
                 request_keyframe: Callable[[], None], video_codec: str = "h264",
                 audio_leads: bool = False,
                 keyframe_written: Callable[[bytes, float], None] | None = None) -> None:
        """``keyframe_written(data, media seconds)``: for each real keyframe written (the
        thumbnails), never a repeated one."""
        self.writer = writer
        self.video_codec = video_codec
        self.has_video, self.has_audio = has_video, has_audio
        self._request_keyframe = request_keyframe
        self._keyframe_written = keyframe_written
        self._policy = SegmentPolicy(target=round(segment_duration * CLOCK), retry=CLOCK)
        self._audio_channels, self._audio_codec = audio_channels, audio_codec
        self._mixer, self._audio = self._new_stages()
        self._audible = AudibleSpans()
        self.video_timeline: TrackTimeline | None = None
        self.audio_timeline: TrackTimeline | None = None
        # (timeline, by when): the audio's place by sender reports, taken at a pause
        self._audio_move: tuple[TrackTimeline, float | None] | None = None
        self._config: bytes | None = None  # of the last keyframe written (AccessUnit)
        self._last_keyframe: bytes | None = None
        self._last_video_pts: int | None = None  # written
        # How long the last picture lasts: the median of the last steps between
        # pictures, as ``check`` reads it (inspection/durations.py). The last step alone
        # stretched a recording's last EXTINF by the publisher's last pause.
        self._video_steps: deque[int] = deque([3000], maxlen=9)
        self._last_video_step = 3000
        self._audio_end: int | None = None  # end of the last audio written, 90 kHz
        self._waiting_for_keyframe = False  # after loss or a freeze
        self._asked_at: int | None = None  # video pts of the last such request
        self._pending_discontinuity = False
        # Begun on audio alone (no keyframe came): segments follow the audio until the
        # video's first keyframe, where the video joins the program after a discontinuity.
        self._audio_leads = audio_leads
        self._finishing = False
        self.stats = PipelineStats()
        self._freezes = FreezeMeter(self.stats)

    def _new_stages(self) -> tuple[Interleaver[AccessUnit | AudioFrame],
                                   OpusToAac | OpusTimeline | None]:
        streams = [s for s, on in (("video", self.has_video), ("audio", self.has_audio)) if on]
        mixer: Interleaver[AccessUnit | AudioFrame] = Interleaver(streams, INTERLEAVE_WAIT)
        audio: OpusToAac | OpusTimeline | None = None
        if self.has_audio:
            audio = (OpusTimeline(self._audio_channels) if self._audio_codec == "opus"
                     else OpusToAac(self._audio_channels))
        return mixer, audio

    def restart(self) -> None:
        """After a failure inside (the transcoder, the muxer): the open segment ends
        with what it has, the stages start afresh, and the recording goes on at the next
        keyframe (audio only: the next frame) after a DISCONTINUITY. What was held in the
        stages is dropped; what was written stays."""
        self.stats.restarts += 1
        self._mixer, self._audio = self._new_stages()
        self._pending_discontinuity = True
        self._policy.segment_start = None
        self.writer.restart()
        self.writer.end_segment(self._media_end())
        if self.has_video:
            self.ask_for_keyframe()

    # --- timelines ---------------------------------------------------------------------

    def set_video_timeline(self, keyframe_rtp: int) -> None:
        """The recording's first keyframe is t=0."""
        self.video_timeline = TrackTimeline(-keyframe_rtp)

    def place_video(self, clock: TrackClock, origin_seconds: float) -> None:
        """A republished track lands where its clock says, after a discontinuity."""
        self.video_timeline = track_timeline(clock, origin_seconds)
        self._waiting_for_keyframe = True
        self._pending_discontinuity = True

    def place_audio(self, clock: TrackClock, origin_seconds: float, *, restart: bool) -> None:
        self.audio_timeline = track_timeline(clock, origin_seconds)
        self._audio_move = None
        if restart:
            self._pending_discontinuity = True

    def move_audio(self, clock: TrackClock, origin_seconds: float) -> float:
        """The audio's better place (by sender reports, where arrival times placed it):
        taken at the next silent packet, or ``AUDIO_MOVE_WAIT`` from now at the latest.
        The audio stages see a jump in its timestamps: a later place is filled with
        silence, an earlier one skips what would overlap. Returns the move (seconds,
        later positive), 0 when it is too small to make."""
        if self.audio_timeline is None:
            return 0.0
        timeline = track_timeline(clock, origin_seconds)
        move = timeline.offset - self.audio_timeline.offset
        if abs(move) < AUDIO_MOVE_LEAST:
            self.stats.audio_moved = (0.0, 0.0)
            return 0.0
        self._audio_move = (timeline, None)
        return move / AUDIO_RATE

    # --- input -------------------------------------------------------------------------

    def video(self, unit: AccessUnit) -> None:
        if self.video_timeline is None:
            return
        pts = self.video_timeline.pts(unit.rtp_timestamp)
        if self._waiting_for_keyframe or unit.after_loss:
            if not unit.keyframe:
                self.stats.dropped_frames += 1
                self._waiting_for_keyframe = True
                self._ask_again(pts)
                return
            self._waiting_for_keyframe = False
        if pts < 0 or (self._last_video_pts is not None and pts <= self._last_video_pts):
            self.stats.dropped_frames += 1
            return
        if self._policy.wants_keyframe(pts, unit.keyframe):
            self.ask_for_keyframe()
        if unit.delay > self.stats.most_video_delay:
            self.stats.most_video_delay = unit.delay
        # Alive when its pictures reach us, however late they arrived (video_pending).
        for stream, when, item in self._mixer.push("video", pts, unit, unit.arrival + unit.delay):
            self._release(stream, when, item)

    def video_pending(self, pending: bool) -> None:
        """Whether pictures that arrived are still coming, from a transcoder behind
        (Interleaver.hold): the audio waits for them instead of freezing the video."""
        self._mixer.hold("video", pending)

    def audio(self, packet: AudioPacket) -> None:
        if self._audio is None or self.audio_timeline is None:
            return
        if self._audio_move is not None:
            self._maybe_move_audio(packet)
        pts48 = self.audio_timeline.pts(packet.rtp_timestamp) - OPUS_LOOKAHEAD
        if pts48 + 960 <= 0:
            return  # entirely before t=0
        self._audible.packet(packet.data, pts48)
        for frame in self._audio.push(packet.data, pts48):
            self._push_audio(frame, packet.arrival)

    def _maybe_move_audio(self, packet: AudioPacket) -> None:
        assert self._audio_move is not None and self.audio_timeline is not None
        timeline, by = self._audio_move
        if by is None:
            by = packet.arrival + AUDIO_MOVE_WAIT
            self._audio_move = (timeline, by)
        if not is_silence(packet.data) and packet.arrival < by:
            return
        moved = timeline.offset - self.audio_timeline.offset
        at = self.audio_timeline.pts(packet.rtp_timestamp)
        self.audio_timeline, self._audio_move = timeline, None
        self.stats.audio_moved = (moved / AUDIO_RATE, max(at, 0) / AUDIO_RATE)

    def finish(self) -> int:
        """Flush everything; return the end of the media (90 kHz) for the last EXTINF.

        What the flush releases extends the open segment: a keyframe there, due for a
        cut, would begin a last segment of a few frames that no audio reaches (the
        session ended before the audio caught up), which players refuse. Audio that
        ended before the video is filled with silence to its end, for the same reason:
        a keyframe that came after the last sound began a segment no audio reached."""
        self._finishing = True
        if self._audio is not None:
            filled = ([] if self._last_video_pts is None else self._audio.fill_to(
                (self._last_video_pts + self._last_video_step) * 8 // 15, END_FILL_MOST))
            for frame in [*filled, *self._audio.flush()]:
                self._push_audio(frame, float("inf"))
        for stream, when, item in self._mixer.flush():
            self._release(stream, when, item)
        return self._media_end()

    def _media_end(self) -> int:
        """Where the media written so far ends (90 kHz)."""
        ends = []
        if self._last_video_pts is not None:
            ends.append(self._last_video_pts + self._last_video_step)
        if self._audio_end is not None:
            ends.append(self._audio_end)
        return max(ends, default=0)

    def _ask_again(self, pts: int) -> None:
        """While frames are dropped for want of a keyframe, ask for one every second
        (a PLI can be lost, and the SFU drops those closer than a second)."""
        if self._asked_at is None or pts - self._asked_at >= CLOCK:
            self._asked_at = pts
            self.ask_for_keyframe()

    def ask_for_keyframe(self) -> None:
        self.stats.keyframe_requests += 1
        self._request_keyframe()

    def _push_audio(self, frame: AudioFrame, arrival: float) -> None:
        if frame.pts < 0:
            return  # AAC priming before t=0: t=0 is the first keyframe, nothing earlier
        for stream, when, item in self._mixer.push("audio", frame.pts_90k, frame, arrival):
            self._release(stream, when, item)

    # --- output, in presentation order --------------------------------------------------

    def _release(self, stream: str, pts: int, item: AccessUnit | AudioFrame) -> None:
        if isinstance(item, AccessUnit):
            self._write_video(item, pts)
        else:
            self._write_audio(item, pts)

    def _write_video(self, unit: AccessUnit, pts: int) -> None:
        data = unit.data
        if unit.keyframe:
            # A new configuration is a new stream (H.264: another SPS, a new resolution
            # or profile; libwebrtc repeats the same one before every IDR).
            changed = bool(unit.config) and self._config not in (None, unit.config)
            self._config = unit.config or self._config
            start = self.writer.segment_start
            open_segment = start is not None
            paused = open_segment and pts - self._media_end() > self._policy.target
            if self._audio_leads:  # the video joins here, in a segment of its own
                self._audio_leads = False
                self.writer.video_joins()
                self.stats.video_joined_at = pts / CLOCK
                cut = self._policy.force_cut(pts)
            elif changed and start is not None and pts - start < LAYER_SWITCH_WINDOW:
                self.writer.replace_open_segment(pts)
                self.stats.discontinuities += bool(self.writer.segments)  # not before the first
                cut = False
            else:
                cut = (self._policy.force_cut(pts)
                       if changed or paused or self._pending_discontinuity
                       else not self._finishing and self._policy.on_video(pts, True))
            discontinuity = self._pending_discontinuity or ((changed or paused) and open_segment)
            if cut:
                self._cut(pts, discontinuity, paused=paused)
            self._last_keyframe = data
        if self.writer.segment_start is None:
            return  # nothing is written before the first keyframe
        if self._last_video_pts is not None:
            self._video_steps.append(max(1, pts - self._last_video_pts))
            self._last_video_step = median_low(self._video_steps)
        self.writer.write_video(data, pts, unit.keyframe)
        self.writer.mark_real(pts + self._last_video_step)
        if unit.keyframe and self._keyframe_written is not None:
            self._keyframe_written(data, pts / CLOCK)
        self._last_video_pts = pts
        self.stats.video_frames += 1
        self._freezes.picture(pts)

    def _write_audio(self, frame: AudioFrame, pts: int) -> None:
        if not self.has_video or self._audio_leads:
            if self._policy.on_audio_only(pts):
                self._cut(pts, self._pending_discontinuity)
        elif self._video_stalled(pts) and self._policy.due(pts):
            self._freeze_frame(pts)
        start = self.writer.segment_start
        if start is None:
            return
        if pts < start:
            # Only when both streams were silent long enough for the interleaver to stop
            # waiting can audio come after a later keyframe; a segment never holds
            # media from before its start.
            self.stats.late_audio_frames += 1
            return
        self.writer.write_audio(frame)
        self._audio_end = (frame.pts + frame.duration) * 15 // 8
        # Silence counts as real where there is no picture to freeze (a recording of
        # audio alone, or before its video joined): a quiet speaker is no frozen tail.
        sound = self._audible.covers(frame.pts, frame.pts + frame.duration)
        if sound or self._last_video_pts is None:
            self.writer.mark_real(self._audio_end)
        self.stats.audio_frames += 1

    def _video_stalled(self, audio_pts: int) -> bool:
        return (self._last_keyframe is not None and self._last_video_pts is not None
                and audio_pts - self._last_video_pts > STALL)

    def _freeze_frame(self, pts: int) -> None:
        """The camera sent nothing: repeat the last keyframe, re-timed, to start the
        segment, so the picture freezes instead of vanishing. Real video resumes only
        at a real keyframe, which is asked for now."""
        assert self._last_keyframe is not None
        self._policy.force_cut(pts)
        self._cut(pts, self._pending_discontinuity)
        self.writer.write_video(self._last_keyframe, pts, True)
        self._last_video_pts = pts
        self.stats.frozen_frames += 1
        self._waiting_for_keyframe = True
        self.ask_for_keyframe()

    def _cut(self, pts: int, discontinuity: bool, *, paused: bool = False) -> None:
        # Where the timeline jumps (a track that came back on its own clock, a publisher
        # that paused everything), the closing segment ends where its media ends, not
        # where the next one starts.
        jump = paused or (discontinuity and self._pending_discontinuity)
        self.writer.start_segment(pts, discontinuity=discontinuity,
                                  previous_end=self._media_end() if jump else None)
        if jump:
            self._freezes.restart()
        if discontinuity:
            self.stats.discontinuities += 1
        self._pending_discontinuity = False
