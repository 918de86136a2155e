"""The room client: joins a LiveKit room and receives one participant's media, encoded.

It speaks LiveKit signalling (``signal.py``), answers the server's subscriber offers
with aiortc (which accepts VP9 and AV1 too, ``negotiation.py``), taps raw RTP out of
aiortc (``tap.py``) and turns it into access units and Opus packets (``tracks.py``) for
a ``MediaConsumer``. Nothing is decoded, but video the segments cannot carry, which is
transcoded (``TranscodingReader``).

A session is one join. When the transport or the signalling fails, or the server asks
for a reconnect, the session is thrown away and the room joined again from scratch
(aiortc cannot restart ICE); the consumer sees the tracks end and start again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidStateError
from aiortc.sdp import SessionDescription as ParsedSdp
from livekit.protocol import models, rtc

from ..config import E2EEConfig
from ..errors import ParticipantLeft, SignalError
from ..media.codecs import TRANSCODED_TO, TS, VIDEO_CODECS, RecordingFormat
from ..media.e2ee_keys import SharedKeyRing
from ..media.pli import PliPacing
from ..media.rtp import SenderReport
from ..media.track import MediaConsumer, RemoteTrack
from ..media.transcode import DEFAULT_SETTINGS, EncoderSettings
from .data_link import DataLink
from .decryption import TrackDecryption, key_ring
from .express import open_express_lane
from .ice import add_trickled_candidate, is_loopback_url, use_loopback_candidates
from .negotiation import extend_codec_table
from .rpc import RpcMethod, RpcServer
from .signal import SignalConnection
from .tap import TapReceiver, start_late_receivers, tap_transceivers
from .tracks import (
    RECORDABLE_VIDEO,
    H264Reader,
    OpusReader,
    PassthroughReader,
    Reader,
    TranscodingReader,
    VideoReader,
)

TS_VIDEO = RecordingFormat.for_container(TS).passthrough_video

logger = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
# How long a rejoined session's reader of a transcoded track waits for the last
# session's to go through its backlog (25-44 s measured with four browsers on a busy
# machine) before that one's remaining frames are given up.
REJOIN_CATCH_UP = 120.0


ENCRYPTIONS = {models.Encryption.NONE: "", models.Encryption.GCM: "gcm"}


class _Rejoin(Exception):
    """The session broke; join the room again from scratch."""


def track_from_info(info: models.TrackInfo) -> RemoteTrack:
    kind = "video" if info.type == models.TrackType.VIDEO else "audio"
    codecs = [c.mime_type for c in info.codecs if c.mime_type]
    mime = info.mime_type or (codecs[0] if codecs else "")
    return RemoteTrack(sid=info.sid, kind=kind, mime_type=mime, width=info.width,
                       height=info.height, stereo=info.stereo, simulcast=info.simulcast,
                       backup_mime_types=tuple(c for c in codecs if c.lower() != mime.lower()),
                       encryption=ENCRYPTIONS.get(info.encryption, "custom"))


def track_sids_by_mid(offer: rtc.SessionDescription) -> dict[str, str]:
    """Which track each m-line of a subscriber offer carries, by its mid."""
    mapping = dict(offer.mid_to_track_id)
    for media in ParsedSdp.parse(offer.sdp).media:
        if media.rtp.muxId and media.rtp.muxId not in mapping and media.msid:
            # LiveKit's msid is "<participant sid>|<track sid> <track sid>"
            mapping[media.rtp.muxId] = media.msid.split()[-1]
    return mapping


class RoomClient:
    """Receives the tracks of the participant ``identity``; see the module docstring."""

    def __init__(self, url: str, token: str, identity: str, consumer: MediaConsumer,
                 *, kinds: Iterable[str] = ("audio", "video"),
                 passthrough_video: frozenset[str] = TS_VIDEO,
                 rpc_methods: dict[str, RpcMethod] | None = None,
                 spill_dir: Path | None = None,
                 transcoding: EncoderSettings = DEFAULT_SETTINGS,
                 e2ee: E2EEConfig | None = None) -> None:
        """``passthrough_video``: which video mime types the segments carry as they
        come (``RecordingFormat.passthrough_video``); the other recordable ones are
        transcoded to H.264 (``media/codecs.py``), a backlog of frames past what memory
        holds waiting in a file in ``spill_dir`` (``room/backlog.py``). ``e2ee``: the
        room's shared key, without which an end-to-end encrypted track is not recorded."""
        self._url = url
        self._token = token
        self.identity = identity
        self._consumer = consumer
        self._kinds = frozenset(kinds)
        self._passthrough_video = passthrough_video
        self._spill_dir = spill_dir
        self._transcoding = transcoding
        self._e2ee = e2ee
        self._keys: SharedKeyRing | None = None  # derived from e2ee at the first join
        self._sif_trailer = b""  # what ends the SFU's own frames in an encrypted room
        self._signal: SignalConnection | None = None
        self._pc: RTCPeerConnection | None = None
        self._taps: dict[str, TapReceiver] = {}  # by mid
        self._readers: dict[str, Reader] = {}  # by track sid
        self._ended_readers: list[Reader] = []  # for their figures (receive_figures)
        self._tracks: dict[str, RemoteTrack] = {}  # published by the participant, by sid
        self._participant_sid: str | None = None
        self._early_candidates: list[rtc.TrickleRequest] = []  # before the first offer
        self._session_tasks: set[asyncio.Future[Any]] = set()
        self._client_tasks: set[asyncio.Future[Any]] = set()
        self._closing = False
        self._connected = asyncio.Event()
        self._rpc_methods = rpc_methods or {}
        self._log_context = {"participant": identity}  # and the room, once joined
        self._data: DataLink | None = None  # only to answer RPC calls
        self.sessions = 0
        self.room_sid = ""  # the room's, once joined
        self.express_lanes = 0  # transports whose SRTP skips aiortc's queue (express.py)
        use_loopback_candidates(is_loopback_url(url))
        extend_codec_table()

    # --- public ------------------------------------------------------------------------

    async def run(self) -> None:
        """Receive until the participant leaves or ``close()``; rejoin on failures."""
        failures = 0
        while not self._closing:
            try:
                await self._run_session()
                return
            except ParticipantLeft:
                return
            # (InvalidStateError: the peer connection closed under an answer in progress,
            # by close() or by its own failure.)
            except (_Rejoin, SignalError, ConnectionError, InvalidStateError) as exc:
                if self._closing:
                    return
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                logger.warning("room session lost (%s); rejoining in %.1f s", exc, delay,
                               extra=self._log_context)
                await asyncio.sleep(delay)
            finally:
                await self._end_session()

    def replace_consumer(self, consumer: MediaConsumer) -> None:
        """From now on every track goes to ``consumer`` (a new recording), which is told
        of the tracks already flowing."""
        self._consumer = consumer
        for reader in self._readers.values():
            reader.consumer = consumer
            consumer.on_track_started(reader.track)

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def close(self) -> None:
        self._closing = True
        await self._end_session()

    async def request_keyframe(self, track_sid: str | None = None) -> None:
        """A keyframe soon on one video track, or on all of them: a PLI to the publisher
        (once the losses being recovered are filled, 0.3 s at most: ``tap.PLI_HOLD``), or
        for a transcoded track an IDR from the transcoder. (The readers' own requests,
        after a loss, go at once.)

        A transcoded track whose last session's reader still goes through its backlog
        (a rejoin on a busy machine) has its pictures from that reader for now, so it is
        that transcoder that makes the keyframe: without it, nothing ends a segment
        until the backlog is through."""
        for ended in self._ended_readers:
            if (isinstance(ended, TranscodingReader) and ended.delivering
                    and track_sid in (None, ended.track.sid)):
                ended.request_keyframe()
        for mid_tap in self._taps.values():
            reader = mid_tap.sink
            if not isinstance(reader, VideoReader) or (
                    track_sid not in (None, reader.track.sid)):
                continue
            if isinstance(reader, TranscodingReader):
                reader.request_keyframe()
            else:
                await mid_tap.request_keyframe(after_recovery=True)

    def sender_report(self, track_sid: str) -> SenderReport | None:
        reader = self._readers.get(track_sid)
        return reader.sender_report if reader else None

    def reader(self, track_sid: str) -> Reader | None:
        return self._readers.get(track_sid)

    async def transcoders_caught_up(self, within: float) -> bool:
        """After the tracks ended: wait (``within`` seconds at most) until every
        transcoder went through its backlog; False if one had not, and gave it up."""
        readers = [r for r in self.readers() if isinstance(r, TranscodingReader)]
        return all(await asyncio.gather(*(r.caught_up(within) for r in readers)))

    def readers(self) -> list[Reader]:
        """Every track reader of the client's life, the ended ones too."""
        return [*self._ended_readers, *self._readers.values()]

    # --- one session ---------------------------------------------------------------------

    async def _run_session(self) -> None:
        signal = self._signal = await SignalConnection.connect(self._url, self._token)
        self.sessions += 1
        join = signal.join
        self._log_context = {"room": join.room.name, "participant": self.identity}
        self.room_sid = join.room.sid
        self._sif_trailer = bytes(join.sif_trailer)
        if self._e2ee is not None and self._keys is None:
            self._keys = await asyncio.to_thread(key_ring, self._e2ee)
        logger.info("joined room %s as %s (server %s)", join.room.name,
                    join.participant.identity, join.server_version,
                    extra=self._log_context)
        # No ICE servers: the SFU's candidates are direct, and STUN servers out on the
        # internet are unreachable from the closed networks recorders often run in.
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pc.on("connectionstatechange", self._on_connection_state)
        if self._rpc_methods:
            data = self._data = DataLink(RpcServer(self._rpc_methods, self._send_data).on_data)
            data.receive_on(self._pc)
            await data.open(signal)
        await self._update_participants(join.other_participants)
        async for response in signal.responses():
            await self._handle(response)
        raise _Rejoin("signalling connection closed")

    async def _end_session(self) -> None:
        """The tracks end; a transcoder goes through its backlog first (``caught_up``;
        a rejoined session's reader of its track waits for that: ``_attach``)."""
        self._connected.clear()
        for task in list(self._session_tasks):
            task.cancel()
        for sid in list(self._readers):
            reader = self._readers.pop(sid)
            self._ended_readers.append(reader)
            reader.on_bye()
        self._taps.clear()
        self._tracks.clear()
        self._early_candidates.clear()
        pc, self._pc = self._pc, None
        signal, self._signal = self._signal, None
        data, self._data = self._data, None
        if data is not None:
            await data.close()
        if pc is not None:
            await pc.close()
        if signal is not None:
            await signal.close(leave=True)

    def _on_connection_state(self) -> None:
        pc = self._pc
        if pc is None:
            return
        state = pc.connectionState
        logger.debug("subscriber connection %s", state)
        if state == "connected":
            self._connected.set()
        elif state == "failed" and self._signal is not None:
            # Closing the signalling ends the response loop, which rejoins.
            asyncio.get_running_loop().create_task(self._signal.close(leave=True))

    async def _handle(self, response: rtc.SignalResponse) -> None:
        kind = response.WhichOneof("message")
        if kind == "offer":
            await self._answer(response.offer)
        elif kind == "answer" and self._data is not None:
            await self._data.answered(response.answer)
        elif kind == "trickle":
            if response.trickle.target == rtc.SignalTarget.PUBLISHER and self._data is not None:
                await self._data.add_candidate(response.trickle)
            else:
                await self._add_candidate(response.trickle)
        elif kind == "update":
            await self._update_participants(response.update.participants)
        elif kind == "track_unpublished":
            self._end_track(response.track_unpublished.track_sid)
        elif kind == "refresh_token":
            self._token = response.refresh_token
        elif kind == "leave":
            action = response.leave.action
            if action == rtc.LeaveRequest.Action.DISCONNECT:
                self._closing = True
                raise ParticipantLeft(f"server closed the session: {response.leave.reason}")
            raise _Rejoin(f"server asked to reconnect ({response.leave.reason})")

    # --- participants and subscriptions ---------------------------------------------------

    async def _update_participants(self, participants: Iterable[models.ParticipantInfo]) -> None:
        for info in participants:
            if info.identity != self.identity:
                continue
            if info.state == models.ParticipantInfo.State.DISCONNECTED:
                raise ParticipantLeft(f"{self.identity} left the room")
            self._participant_sid = info.sid
            published = {t.sid: track_from_info(t) for t in info.tracks
                         if track_from_info(t).kind in self._kinds}
            for sid in set(self._tracks) - set(published):
                self._end_track(sid)
            new = [t for sid, t in published.items() if sid not in self._tracks]
            self._tracks.update(published)
            if new:
                await self._subscribe(new)

    async def _subscribe(self, tracks: list[RemoteTrack]) -> None:
        assert self._signal is not None and self._participant_sid is not None
        sids = [t.sid for t in tracks]
        await self._signal.send(rtc.SignalRequest(subscription=rtc.UpdateSubscription(
            track_sids=sids, subscribe=True,
            participant_tracks=[models.ParticipantTracks(
                participant_sid=self._participant_sid, track_sids=sids)],
        )))
        video = [t.sid for t in tracks if t.kind == "video"]
        if video:
            # The recording wants the top simulcast layer, whatever any viewer needs.
            await self._signal.send(rtc.SignalRequest(track_setting=rtc.UpdateTrackSettings(
                track_sids=video, disabled=False, quality=models.VideoQuality.HIGH)))
        logger.info("subscribing to %s", ", ".join(f"{t.kind} {t.sid} ({t.mime_type})"
                                                     for t in tracks),
                    extra=self._log_context)

    def _end_track(self, sid: str) -> None:
        self._tracks.pop(sid, None)
        reader = self._readers.pop(sid, None)
        if reader is not None:
            self._ended_readers.append(reader)
            for tap in self._taps.values():
                if tap.sink is reader:
                    tap.sink = None
            reader.on_bye()

    # --- WebRTC ----------------------------------------------------------------------------

    async def _answer(self, offer: rtc.SessionDescription) -> None:
        pc, signal = self._pc, self._signal
        assert pc is not None and signal is not None
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        self._taps = tap_transceivers(pc)
        early, self._early_candidates = self._early_candidates, []
        for trickle in early:
            await self._add_candidate(trickle)
        for mid, track_sid in track_sids_by_mid(offer).items():
            tap = self._taps.get(mid)
            if tap is not None:
                self._attach(tap, track_sid)
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription
        await signal.send(rtc.SignalRequest(answer=rtc.SessionDescription(
            type="answer", sdp=answer.sdp, id=offer.id)))
        self._schedule(self._once_connected(pc))

    async def _once_connected(self, pc: RTCPeerConnection) -> None:
        await start_late_receivers(pc)
        for transport in {t.receiver.transport for t in pc.getTransceivers()}:
            if transport.state == "connected" and open_express_lane(transport):
                self.express_lanes += 1

    def _attach(self, tap: TapReceiver, track_sid: str) -> None:
        """Point a transceiver's packets at the reader of the track it now carries."""
        track = self._tracks.get(track_sid)
        if track is None:
            tap.sink = None  # a track of someone else, or one already unpublished
            return
        reader = self._readers.get(track_sid)
        if reader is None:
            reader = self._new_reader(track, tap)
            if reader is None:
                return
            self._readers[track_sid] = reader
            previous = next((r for r in self._ended_readers if r.track.sid == track_sid
                             and isinstance(r, TranscodingReader) and r.delivering), None)
            if previous is not None and isinstance(reader, TranscodingReader):
                reader.hold()
                self._follow(asyncio.ensure_future(self._after(previous, reader)))
            else:
                self._consumer.on_track_started(reader.track)
        tap.sink = reader

    async def _after(self, previous: TranscodingReader, reader: TranscodingReader) -> None:
        """A rejoined session's reader of a track whose last reader still goes through
        its backlog (a transcoder behind when the session broke): the track starts
        again for the consumer once that one ended it, none of its pictures lost."""
        await previous.caught_up(REJOIN_CATCH_UP)
        self._consumer.on_track_started(reader.track)
        reader.release()

    def _follow(self, task: asyncio.Future[None]) -> None:
        """Work of the client's, not of one session: a rejoin does not cancel it."""
        self._client_tasks.add(task)
        task.add_done_callback(self._client_tasks.discard)
        task.add_done_callback(_log_failure)

    def _new_reader(self, track: RemoteTrack, tap: TapReceiver) -> Reader | None:
        track = _recordable(track)
        if track.encryption and (track.encryption != "gcm" or self._keys is None):
            self._not_recorded(track, (
                "end-to-end encrypted: set E2EE_PASSPHRASE to the room's shared key to "
                "record it" if track.encryption == "gcm" else
                "end-to-end encrypted with the application's own scheme, which the "
                "recorder cannot decrypt"))
            return None
        reader = self._reader_for(track, tap)
        if reader is not None and track.encryption:
            assert self._keys is not None
            reader.decryption = TrackDecryption(
                self._keys, track.mime_type, self._sif_trailer, track.sid,
                lambda reason: self._consumer.on_track_unsupported(track, reason))
        return reader

    def _not_recorded(self, track: RemoteTrack, reason: str) -> None:
        logger.error("track %s not recorded: %s", track.sid, reason, extra=self._log_context)
        self._consumer.on_track_unsupported(track, reason)

    def _reader_for(self, track: RemoteTrack, tap: TapReceiver) -> Reader | None:
        mime = track.mime_type.lower()

        def send_pli() -> None:
            self._schedule(tap.request_keyframe())

        if (codec := VIDEO_CODECS.get(mime)) is not None:
            tap.pli = PliPacing(simulcast=track.simulcast)
            tap.starts_keyframe = codec.starts_keyframe
            if codec.depacketize is None:  # H.264, by NAL unit, always passed through
                return H264Reader(dataclasses.replace(track, recorded_codec=codec.name),
                                  self._consumer, send_pli)
            if mime in self._passthrough_video:
                return PassthroughReader(dataclasses.replace(track, recorded_codec=codec.name),
                                         self._consumer, codec, send_pli)
            return TranscodingReader(
                dataclasses.replace(track, recorded_codec=TRANSCODED_TO.name),
                self._consumer, codec, send_pli, spill_dir=self._spill_dir,
                settings=self._transcoding)
        if mime in ("audio/opus", "audio/red"):
            # A RED track is Opus with redundancy; our answer offers no RED, so the SFU
            # sends it to us as plain Opus.
            return OpusReader(track, self._consumer)
        self._not_recorded(track, f"{track.mime_type} cannot be recorded yet (H.264, VP8, "
                           "VP9, AV1 video and Opus audio can)")
        return None

    def _send_data(self, packet: bytes) -> None:
        if self._data is not None:
            self._data.send(packet)

    def _schedule(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a session's background work; it is cancelled when the session ends."""
        task = asyncio.ensure_future(coroutine)
        self._session_tasks.add(task)
        task.add_done_callback(self._session_tasks.discard)
        task.add_done_callback(_log_failure)

    async def _add_candidate(self, trickle: rtc.TrickleRequest) -> None:
        if trickle.target == rtc.SignalTarget.SUBSCRIBER and self._pc is not None:
            await add_trickled_candidate(self._pc, trickle, self._early_candidates)


def _recordable(track: RemoteTrack) -> RemoteTrack:
    """The track as it will be received: a codec the recorder cannot take (H.265, say)
    is replaced by the publisher's backup codec, if it has one. Our answer does not
    accept the first, so the server sends us the backup."""
    if track.kind != "video" or track.mime_type.lower() in RECORDABLE_VIDEO:
        return track
    for backup in track.backup_mime_types:
        if backup.lower() in RECORDABLE_VIDEO:
            return dataclasses.replace(track, mime_type=backup,
                                       published_mime_type=track.mime_type)
    return track


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("background task failed: %r", task.exception())
