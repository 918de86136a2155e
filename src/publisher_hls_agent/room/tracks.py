"""Per-track packet readers: RTP packets in, access units and audio packets out.

They sit between the aiortc tap (one call per packet) and the consumer, so they are
written for the per-packet cost: no logging, no allocation beyond what the result needs.
H.264 is passed through as it came (``H264Reader``), and so are VP9 and AV1 when the
segments are fMP4 (``PassthroughReader``). What the segments cannot carry (VP8 always,
VP9 and AV1 in MPEG-TS) is handed frame by frame to a transcoder thread and comes back
as H.264 (``TranscodingReader``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiortc.rtp import RtpPacket

from ..errors import H264PayloadError, RedPayloadError
from ..media import blank, h264
from ..media.assembler import AssembledFrame, FrameAssembler
from ..media.codecs import VIDEO_CODECS, VideoCodec
from ..media.frame_numbers import FrameNumbers
from ..media.nack import NackStats
from ..media.red import split_red
from ..media.rtp import SenderReport, sequence_unwrapper, timestamp_unwrapper
from ..media.top_layer import TOP_LAYER_WAIT, TopLayerStart
from ..media.track import MediaConsumer, RemoteTrack
from ..media.transcode import DEFAULT_SETTINGS, EncodedPicture, EncoderSettings
from ..media.transcoder_process import TranscoderProcess
from ..media.units import AccessUnit, AudioPacket
from .decryption import TrackDecryption
from .transcoding import Transcoder, TranscodingThread

logger = logging.getLogger(__name__)

RECORDABLE_VIDEO = frozenset(VIDEO_CODECS)
SOURCE_KEYFRAME_INTERVAL = 1.0  # seconds between keyframe requests while resynchronising
VIDEO_CLOCK = 90_000  # ticks a second of every video codec's RTP timestamps


def new_transcoder(source_codec: str, size: tuple[int, int] | None,
                   settings: EncoderSettings) -> Transcoder:
    """Out of the recording process: see ``media/transcoder_process.py``."""
    return TranscoderProcess(source_codec, size, settings)


@dataclass
class TrackStats:
    packets: int = 0
    frames: int = 0
    keyframes: int = 0
    broken_frames: int = 0  # could not be depacketized (or decoded, to be transcoded)
    skipped_frames: int = 0  # after loss or overload, until the next keyframe
    blank_frames: int = 0  # the SFU's own, dropped (media/blank.py)
    parameter_sets_added: int = 0  # H.264: put before an IDR that came without them
    upstream_gaps: int = 0  # H.264: reference pictures the publisher never sent us


class _Reader:
    def __init__(self, track: RemoteTrack, consumer: MediaConsumer) -> None:
        self.track = track
        self.consumer = consumer
        self.stats = TrackStats()
        self.reception = NackStats()  # counted by the tap (room/tap.py)
        self.sender_report: SenderReport | None = None
        self.ended = False
        # Set for an end-to-end encrypted track (room/decryption.py): frames are
        # decrypted as they are reassembled, before anything reads their bytes.
        self.decryption: TrackDecryption | None = None

    def on_red(self, packet: RtpPacket, arrival: float) -> None:
        """Redundant audio is negotiated for audio only; on video it is nonsense."""

    def on_sender_report(self, report: SenderReport) -> None:
        self.sender_report = report

    def on_bye(self) -> None:
        if not self.ended:
            self.ended = True
            self.consumer.on_track_ended(self.track.sid)


class _VideoReader(_Reader):
    """Frames out of packets (``FrameAssembler``); ``_take`` does the codec's part, and
    lets nothing through before a simulcast track's top layer (``_begins``)."""

    def __init__(self, track: RemoteTrack, consumer: MediaConsumer, codec: VideoCodec) -> None:
        super().__init__(track, consumer)
        self._assembler = FrameAssembler(codec.starts_frame,
                                         starts_keyframe=codec.starts_keyframe)
        self._start = TopLayerStart((track.width, track.height))
        self._layers = codec.layers
        self._frame_dropped = False  # the last frame taken was dropped (broken, undecrypted)

    @property
    def frames_dropped(self) -> int:
        return self._assembler.frames_dropped

    @property
    def packets_late(self) -> int:
        return self._assembler.packets_late

    def on_rtp(self, packet: RtpPacket, arrival: float, seen: float | None = None) -> None:
        self.stats.packets += 1
        assembler = self._assembler
        frames = assembler.push(packet.sequence_number, packet.timestamp, bool(packet.marker),
                                packet.payload, arrival, seen)
        if assembler.keyframe_wanted:  # a packet that is probably lost for good
            assembler.keyframe_wanted = False
            logger.debug("track %s: a packet is probably lost for good", self.track.sid)
            self._lost_for_good()
        for frame in frames:
            if self._frame_dropped:  # the frames after it may refer to it
                self._frame_dropped = False
                frame = dataclasses.replace(frame, after_loss=True)
            if frame.after_loss:
                logger.debug("track %s: a frame after a loss (%d given up so far)",
                             self.track.sid, assembler.frames_dropped)
            self._take(frame)

    def _take(self, frame: AssembledFrame) -> None:
        raise NotImplementedError

    def _clear(self, data: bytes, frame: AssembledFrame) -> bytes | None:
        """The frame's bytes decrypted, if the track is encrypted; None: dropped (the
        SFU's own, or not decryptable: the next frame then comes after a loss)."""
        if self.decryption is None:
            return data
        if self._layers is None:
            clear = self.decryption.open(data, frame.arrival)
        else:  # each layer's frame sealed on its own
            split, join = self._layers
            frames = [self.decryption.open(layer, frame.arrival) for layer in split(data)]
            opened = [f for f in frames if f is not None]
            clear = (None if len(opened) < len(frames) else
                     opened[0] if len(opened) == 1 else join(opened))
        self._frame_dropped = clear is None
        return clear

    def _broken(self, arrival: float, error: Exception) -> None:
        """A frame that cannot be depacketized is dropped as a lost one is: the frames
        after it may refer to it, so the next one comes after a loss (and what comes
        after a loss waits for a keyframe, which is asked for)."""
        self.stats.broken_frames += 1
        logger.debug("track %s: a frame that does not depacketize (%s)", self.track.sid,
                     error)
        self._frame_dropped = True
        self._ask_for_keyframe(arrival)

    def _lost_for_good(self) -> None:
        """What to do when a packet is probably never coming (see FrameAssembler)."""

    def _ask_for_keyframe(self, arrival: float) -> None:
        raise NotImplementedError

    def _begins(self, keyframe: bool, size: Callable[[], tuple[int, int] | None],
                arrival: float) -> bool:
        """Whether the track's frames go on from here: once the first top-layer keyframe
        came (``media/top_layer.py``; ``size`` reads a keyframe's picture size)."""
        start = self._start
        if start.started:
            return True
        begins = start.admits(keyframe, size() if keyframe else None, arrival)
        if start.keyframe_wanted:
            start.keyframe_wanted = False
            self._ask_for_keyframe(arrival)
        if begins and start.held_back:
            shown = "x".join(map(str, size() or ("?",)))
            if start.on_top:
                logger.info("track %s begins on %s after %d frames of lower simulcast "
                            "layers", self.track.sid, shown, start.held_back)
            else:
                logger.info("track %s begins on %s: no keyframe of its published %dx%d "
                            "came within %.0f s", self.track.sid, shown, self.track.width,
                            self.track.height, TOP_LAYER_WAIT)
        return begins


class H264Reader(_VideoReader):
    """Reassembles H.264 access units; asks for a keyframe after loss or damage."""

    def __init__(self, track: RemoteTrack, consumer: MediaConsumer,
                 request_keyframe: Callable[[], None]) -> None:
        super().__init__(track, consumer, VIDEO_CODECS["video/h264"])
        self._request_keyframe = request_keyframe
        self._parameter_sets: tuple[bytes, bytes] | None = None  # the last SPS and PPS
        self._frame_numbers = FrameNumbers()

    def _lost_for_good(self) -> None:
        self._request_keyframe()

    def _ask_for_keyframe(self, arrival: float) -> None:
        self._request_keyframe()

    def _take(self, frame: AssembledFrame) -> None:
        timestamp, arrival, after_loss = frame.rtp_timestamp, frame.arrival, frame.after_loss
        if self.decryption is not None and self.decryption.server_made(frame.payloads):
            return
        try:
            nals = h264.depacketize(frame.payloads)
        except H264PayloadError as error:
            self._broken(arrival, error)
            return
        if self.decryption is not None:
            clear = self._clear(h264.to_annexb(nals), frame)
            if clear is None:
                return
            nals = h264.split_annexb(clear)
        has_idr, has_sps, has_pps = h264.describe_access_unit(nals)
        if has_sps and blank.is_blank_keyframe(nals):
            self.stats.blank_frames += 1
            return
        if after_loss and not has_idr:
            self._request_keyframe()
        if has_sps and has_pps:
            self._parameter_sets = h264.parameter_sets(nals)
        elif has_idr and self._parameter_sets is not None:  # some encoders send them once
            nals = [*self._parameter_sets, *nals]
            self.stats.parameter_sets_added += 1
            has_sps = has_pps = True
        elif has_idr:  # their packet lost, and none came before: nothing decodes it
            self._request_keyframe()
        if self._frame_numbers.gap_before(
                nals, self._parameter_sets[0] if self._parameter_sets else None):
            self.stats.upstream_gaps += 1  # undecodable until an IDR, as after a loss
            after_loss = True
            self._request_keyframe()
        if not self._begins(has_idr, self._picture_size, arrival):
            return
        self.stats.frames += 1
        self.stats.keyframes += has_idr
        self.consumer.on_video(self.track.sid, AccessUnit(
            data=h264.to_annexb(nals), rtp_timestamp=timestamp, arrival=arrival,
            keyframe=has_idr, has_parameter_sets=has_sps and has_pps, after_loss=after_loss,
            config=self._parameter_sets[0] if has_idr and self._parameter_sets else b"",
        ))

    def _picture_size(self) -> tuple[int, int] | None:
        return h264.sps_size(self._parameter_sets[0]) if self._parameter_sets else None


class WholeFrames:
    """A whole-frame codec's frames (VP8, VP9, AV1), and whether each is a keyframe."""

    def __init__(self, codec: VideoCodec) -> None:
        assert codec.depacketize is not None and codec.is_keyframe is not None, codec.name
        self.codec = codec
        self._depacketize, self._is_keyframe = codec.depacketize, codec.is_keyframe
        self._keyframe_size = codec.keyframe_size

    def read(self, payloads: list[bytes]) -> bytes:
        """Raises the codec's MediaError (a ValueError) for a damaged frame."""
        return self._depacketize(payloads)

    def is_keyframe(self, data: bytes) -> bool:
        return self._is_keyframe(data)

    def size(self, keyframe: bytes) -> tuple[int, int] | None:
        """A keyframe's picture size, when the codec's header says it simply."""
        return self._keyframe_size(keyframe) if self._keyframe_size is not None else None


class PassthroughReader(_VideoReader):
    """Reassembles VP9 pictures or AV1 temporal units, passed on as they came (fMP4
    carries them); asks for a keyframe after loss or damage."""

    def __init__(self, track: RemoteTrack, consumer: MediaConsumer, codec: VideoCodec,
                 request_keyframe: Callable[[], None]) -> None:
        super().__init__(track, consumer, codec)
        self._frame = WholeFrames(codec)
        self._request_keyframe = request_keyframe

    def _take(self, frame: AssembledFrame) -> None:
        try:
            data = self._frame.read(frame.payloads)
        except ValueError as error:  # each codec's payload errors are ValueErrors
            self._broken(frame.arrival, error)
            return
        clear = self._clear(data, frame)
        if clear is None:
            return
        data, keyframe = clear, self._frame.is_keyframe(clear)
        if frame.after_loss and not keyframe:
            self._request_keyframe()
        if not self._begins(keyframe, lambda: self._frame.size(data), frame.arrival):
            return
        self.stats.frames += 1
        self.stats.keyframes += keyframe
        # A VP9 keyframe and an AV1 one (which carries its sequence header, see
        # av1.is_keyframe) decode on their own: nothing like H.264's SPS/PPS is missing.
        self.consumer.on_video(self.track.sid, AccessUnit(
            data=data, rtp_timestamp=frame.rtp_timestamp, arrival=frame.arrival,
            keyframe=keyframe, has_parameter_sets=keyframe, after_loss=frame.after_loss))

    def _ask_for_keyframe(self, arrival: float) -> None:
        self._request_keyframe()


class TranscodingReader(_VideoReader):
    """Reassembles VP8, VP9 or AV1 frames and has them transcoded to H.264 on a thread.

    A frame whose references were lost cannot be decoded: after a loss (or a frame the
    decoder refused) frames are skipped until the publisher's next keyframe, asked for
    every second until it comes. Load never costs a frame: a thread that falls behind
    delivers late (``room/transcoding.py``), and at the track's end it goes through its
    backlog before the track is over for the consumer (``caught_up`` waits for that).
    Keyframes of the output are the transcoder's to make (``request_keyframe``), so the
    recorder never waits for the publisher for one.
    """

    def __init__(self, track: RemoteTrack, consumer: MediaConsumer, codec: VideoCodec,
                 request_source_keyframe: Callable[[], None], *,
                 spill_dir: Path | None = None,
                 settings: EncoderSettings = DEFAULT_SETTINGS) -> None:
        super().__init__(track, consumer, codec)
        self._frame = WholeFrames(codec)
        self._request_source_keyframe = request_source_keyframe
        self._spill_dir = spill_dir
        self._settings = settings
        self._thread: TranscodingThread | None = None
        self._finishing = False  # the track is over; the thread goes through its backlog
        self._caught_up = asyncio.Event()
        self._resync = True  # nothing decodable until a keyframe
        self._asked_at = -SOURCE_KEYFRAME_INTERVAL  # arrival time of the last PLI sent
        self.most_delay = 0.0  # the longest a frame took to come out of the transcoder
        self._in_transcoder = 0  # frames submitted and not yet done
        self._held: list[AccessUnit] | None = None  # while the last session's goes on (hold)

    @property
    def backlog(self) -> int:
        """Frames waiting for the transcoder."""
        return len(self._thread.backlog) if self._thread is not None else 0

    def request_keyframe(self) -> None:
        """An IDR from the transcoder; before it has its first frame, the publisher's
        keyframe is what that takes."""
        if self._thread is not None:
            self._thread.force_keyframe()
        else:
            self._request_source_keyframe()

    def on_bye(self) -> None:
        if self._finishing:
            return
        self._finishing = True
        if self._thread is None:
            self._finished()
        else:
            self._thread.close()

    def hold(self) -> None:
        """This track's reader in a rejoined session, while the last session's still
        goes through its backlog: it transcodes, but holds its pictures back so that
        none overtakes an older one (``release`` once the other is through)."""
        self._held = []

    def release(self) -> None:
        """The last session's reader is through: what was held goes to the consumer."""
        held, self._held = self._held or [], None
        if self._in_transcoder:
            self.consumer.on_video_pending(self.track.sid, True)
        for unit in held:
            if not self.ended:
                self.consumer.on_video(self.track.sid, unit)

    @property
    def delivering(self) -> bool:
        """Whether frames it received are still to be delivered (its track not over)."""
        return not self._caught_up.is_set()

    async def caught_up(self, within: float) -> bool:
        """Wait (``within`` seconds at most) until the frames received are all delivered
        after the track's end; False if they were not: those left are then given up."""
        try:
            await asyncio.wait_for(self._caught_up.wait(), within)
        except TimeoutError:
            logger.error("track %s: the transcoder was %d frames behind %.0f s after the "
                         "track ended; those frames are not recorded", self.track.sid,
                         self.backlog, within)
            self._finished()
            return False
        return True

    def _finished(self) -> None:
        if not self._caught_up.is_set():
            self._caught_up.set()
            if self._in_transcoder:  # given up on (not through in time)
                self.consumer.on_video_pending(self.track.sid, False)
            super().on_bye()

    def _take(self, frame: AssembledFrame) -> None:
        try:
            data = self._frame.read(frame.payloads)
        except ValueError:
            self.stats.broken_frames += 1
            self._resync = True
            return
        clear = self._clear(data, frame)
        if clear is None:
            self._resync = True
            return
        data, keyframe = clear, self._frame.is_keyframe(clear)
        if keyframe and self._frame.codec.is_blank(data):
            self.stats.blank_frames += 1
            return
        if not self._begins(keyframe, lambda: self._frame.size(data), frame.arrival):
            return
        if frame.after_loss and not keyframe:
            self._resync = True
        if self._resync and not keyframe:
            self.stats.skipped_frames += 1
            if frame.arrival - self._asked_at >= SOURCE_KEYFRAME_INTERVAL:
                self._ask_source(frame.arrival)
            return
        if self._finishing:
            return
        if self._thread is None:
            self._thread = TranscodingThread(
                new_transcoder(self._frame.codec.name, (self.track.width, self.track.height),
                               self._settings),
                f"transcode-{self.track.sid}", self._done, self._failed, self._finished,
                spill_dir=self._spill_dir,
                keyframe_every=round(self._settings.keyframe_every * VIDEO_CLOCK))
        self._thread.submit(data, frame.rtp_timestamp, frame.arrival)
        self._in_transcoder += 1
        if self._in_transcoder == 1 and self._held is None:
            self.consumer.on_video_pending(self.track.sid, True)
        self._resync = False
        self.stats.frames += 1
        self.stats.keyframes += keyframe

    def _ask_for_keyframe(self, arrival: float) -> None:
        self._ask_source(arrival)

    def _ask_source(self, now: float) -> None:
        self._asked_at = now
        self._request_source_keyframe()

    def _done(self, pictures: list[EncodedPicture], arrival: float, delay: float) -> None:
        self.most_delay = max(self.most_delay, delay)
        for picture in pictures:
            self._deliver(picture, arrival, delay)
        self._frame_out()

    def _frame_out(self) -> None:
        self._in_transcoder -= 1
        if not self._in_transcoder and not self.ended and self._held is None:
            self.consumer.on_video_pending(self.track.sid, False)

    def _deliver(self, picture: EncodedPicture, arrival: float, delay: float) -> None:
        if self.ended:
            return
        sets = (h264.parameter_sets(h264.split_annexb(picture.data))
                if picture.keyframe else None)  # (x264 puts them before every IDR)
        unit = AccessUnit(
            data=picture.data, rtp_timestamp=picture.rtp_timestamp, arrival=arrival,
            keyframe=picture.keyframe, has_parameter_sets=picture.has_parameter_sets,
            after_loss=False,  # the encoder's references are its own: never missing
            config=sets[0] if sets is not None else b"", delay=delay)
        if self._held is not None:
            self._held.append(unit)
        else:
            self.consumer.on_video(self.track.sid, unit)

    def _failed(self, reason: str) -> None:
        self.stats.broken_frames += 1
        if self.stats.broken_frames & (self.stats.broken_frames - 1) == 0:  # 1, 2, 4, 8...
            logger.warning("track %s: %s (%d so far); waiting for the publisher's next "
                           "keyframe", self.track.sid, reason, self.stats.broken_frames)
        self._resync = True
        self._frame_out()


class OpusReader(_Reader):
    """Passes Opus packets on with unwrapped timestamps; drops late duplicates. A RED
    packet (``audio/red``, what LiveKit sends a subscriber that accepts it) brings
    copies of the frames before its own: those fill the holes lost packets left."""

    def __init__(self, track: RemoteTrack, consumer: MediaConsumer) -> None:
        super().__init__(track, consumer)
        self._timestamps = timestamp_unwrapper()
        self._sequences = sequence_unwrapper()
        self._highest_seq: int | None = None
        self._last_emitted: int | None = None
        self.late_packets = 0
        self.packets_missing = 0  # sequence numbers never seen
        self.red_recovered = 0  # frames that came only as a RED copy

    def on_rtp(self, packet: RtpPacket, arrival: float, seen: float | None = None) -> None:
        self._count(packet)
        self._emit(packet.payload, self._timestamps.unwrap(packet.timestamp), arrival)

    def on_red(self, packet: RtpPacket, arrival: float) -> None:
        self._count(packet)
        try:
            blocks = split_red(packet.payload)
        except RedPayloadError:
            self.stats.broken_frames += 1
            return
        timestamp = self._timestamps.unwrap(packet.timestamp)
        for offset, frame in blocks:
            if offset and (self._last_emitted is None or timestamp - offset <= self._last_emitted):
                continue  # a copy of what came already (or of what came before the start)
            if offset:
                self.red_recovered += 1
            self._emit(frame, timestamp - offset, arrival)

    def _count(self, packet: RtpPacket) -> None:
        self.stats.packets += 1
        seq = self._sequences.unwrap(packet.sequence_number)
        if self._highest_seq is None or seq > self._highest_seq:
            if self._highest_seq is not None:
                self.packets_missing += seq - self._highest_seq - 1
            self._highest_seq = seq

    def _emit(self, payload: bytes, timestamp: int, arrival: float) -> None:
        if not payload:
            return
        if self._last_emitted is not None and timestamp <= self._last_emitted:
            self.late_packets += 1
            return
        if self.decryption is not None:
            clear = self.decryption.open(payload, arrival)
            if clear is None:
                return
            payload = clear
        if blank.is_blank_audio(payload):
            self.stats.blank_frames += 1
            return
        self._last_emitted = timestamp
        self.stats.frames += 1
        self.consumer.on_audio(self.track.sid, AudioPacket(payload, timestamp, arrival))


VideoReader = H264Reader | PassthroughReader | TranscodingReader
Reader = VideoReader | OpusReader


def decrypt_failures(readers: Iterable[Reader]) -> int:
    """Frames of end-to-end encrypted tracks dropped because they did not decrypt."""
    return sum(r.decryption.failures for r in readers if r.decryption is not None)


def receive_figures(readers: Iterable[Reader]) -> dict[str, int]:
    """What the network did to the tracks and what was done about it, summed."""
    figures = dict.fromkeys(("video_packets", "audio_packets", "packets_lost",
                             "packets_recovered", "retransmissions", "red_recovered",
                             "video_frames_lost", "packets_late",
                             "parameter_sets_added", "upstream_gaps", "frames_decrypted",
                             "decrypt_failures"), 0)
    for reader in readers:
        if reader.decryption is not None:  # end-to-end encrypted (room/decryption.py)
            figures["frames_decrypted"] += reader.decryption.decrypted
            figures["decrypt_failures"] += reader.decryption.failures
        if isinstance(reader, OpusReader):
            figures["audio_packets"] += reader.stats.packets
            figures["packets_lost"] += max(0, reader.packets_missing - reader.red_recovered)
            figures["red_recovered"] += reader.red_recovered
            figures["packets_late"] += reader.late_packets
            continue
        reception = reader.reception
        figures["video_packets"] += reader.stats.packets
        figures["packets_lost"] += max(0, reception.missing - reception.recovered)
        figures["packets_recovered"] += reception.recovered
        figures["retransmissions"] += reception.retransmissions
        figures["video_frames_lost"] += (reader.frames_dropped + reader.stats.broken_frames
                                         + reader.stats.skipped_frames)  # transcoding only
        figures["packets_late"] += reader.packets_late
        figures["parameter_sets_added"] += reader.stats.parameter_sets_added
        figures["upstream_gaps"] += reader.stats.upstream_gaps
    return figures
