"""The seam into aiortc: raw RTP out of a peer connection, with nothing decoded.

aiortc's ``RTCRtpReceiver`` reassembles frames and *decodes* them in a thread, and has
no public hook for encoded media. ``TapReceiver`` takes its place in each transceiver:
it keeps the receiver's transport registration and RTCP duties (receiver reports,
NACK, PLI, REMB) and hands every RTP packet, as it arrives, to a ``PacketSink``.

This module is pinned to aiortc 1.16.0 (see pyproject.toml): it relies on the
transceiver keeping its receiver in ``_RTCRtpTransceiver__receiver``, on the DTLS
transport calling ``_handle_rtp_packet``/``_handle_rtcp_packet``/``_handle_disconnect``,
and on ``RTCPeerConnection.__remoteRtp`` (see ``start_late_receivers``).
``tests/unit/test_tap.py`` fails loudly if an upgrade moves any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol

from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSrPacket,
    RtpPacket,
    clamp_packets_lost,
    pack_remb_fci,
    unwrap_rtx,
)

from ..media.assembler import KEYFRAME_AFTER
from ..media.nack import NackList, NackStats, nack_packets
from ..media.pli import PliPacing
from ..media.rtp import SenderReport, sequence_unwrapper

logger = logging.getLogger(__name__)

# What the recorder tells the SFU it can take. It sits next to the server, and a
# recording wants the best layer, so it never asks the SFU to back off.
REMB_BITRATE = 50_000_000
RTCP_INTERVAL = 1.0
# After a PLI the SFU ignores our NACKs until it forwards a keyframe (media/pli.py). So
# a keyframe the recorder wants for its own sake (a segment boundary's) waits, at most
# this long, while packets found missing less than this ago are asked for again:
# sent at once, the PLI would stop the retransmissions about to fill them. A keyframe
# wanted for a loss (the readers', media/assembler.py) goes at once.
PLI_HOLD = KEYFRAME_AFTER
# When the datagram of the RTCP being handled reached the machine (``time.monotonic``),
# for the task that handles it (``express.py``); None: it is reaching us now. A sender
# report dated when it is handled would make our receiver reports' DLSR short by the
# wait, and the SFU's RTT for us long: it then ignores our first NACK of each packet.
RTCP_ARRIVAL: ContextVar[float | None] = ContextVar("rtcp_arrival", default=None)
NACK_TICK = 0.02  # the finest step of the NACK schedule, as libwebrtc's
DTLS_CONNECT_TIMEOUT = 15.0


class PacketSink(Protocol):
    """Where a track's packets go. Called on the event loop, once per packet."""

    def on_rtp(self, packet: RtpPacket, arrival: float, seen: float | None = None) -> None:
        """``arrival``: when the packet reached the machine; ``seen``: when it was read,
        later if the process was behind (None: then)."""

    def on_red(self, packet: RtpPacket, arrival: float) -> None:
        """A packet of redundant audio (RFC 2198): its primary and earlier frames."""

    def on_sender_report(self, report: SenderReport) -> None: ...

    def on_bye(self) -> None: ...

    reception: NackStats  # where the tap counts the track's losses and recoveries


class _Reception:
    """Per-SSRC counters for receiver reports, and the NACK list of a video stream; a
    few integer operations per packet (aiortc's own version computes jitter and walks
    sets on every packet)."""

    __slots__ = ("base", "expected_prior", "highest", "lsr", "lsr_time", "nacks",
                 "received", "received_prior", "unwrapper")

    def __init__(self, nacks: NackList | None) -> None:
        self.unwrapper = sequence_unwrapper()
        self.base: int | None = None
        self.highest = 0
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.nacks = nacks
        self.lsr = 0
        self.lsr_time = 0.0

    def add(self, sequence: int, now: float) -> None:
        seq = self.unwrapper.unwrap(sequence)
        self.received += 1
        if self.base is None:
            self.base = self.highest = seq
        elif seq > self.highest:
            self.highest = seq
        if self.nacks is not None:
            self.nacks.received(seq, now)

    def report(self, ssrc: int, now: float) -> RtcpReceiverInfo:
        assert self.base is not None
        expected = self.highest - self.base + 1
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior, self.received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = (lost_interval << 8) // expected_interval if lost_interval > 0 else 0
        return RtcpReceiverInfo(
            ssrc=ssrc,
            fraction_lost=min(fraction, 255),
            packets_lost=clamp_packets_lost(expected - self.received),
            highest_sequence=self.highest & 0xFFFFFFFF,
            jitter=0,
            lsr=self.lsr,
            dlsr=int((now - self.lsr_time) * 65536) if self.lsr else 0,
        )


class TapReceiver(RTCRtpReceiver):
    """An ``RTCRtpReceiver`` that forwards raw RTP to a sink instead of decoding."""

    def __init__(self, kind: str, transport: Any) -> None:
        super().__init__(kind, transport)
        self._kind = kind
        self._sink: PacketSink | None = None
        self._stats = NackStats()  # the sink's, where the counts go
        self._codecs: dict[int, RTCRtpCodecParameters] = {}
        self._red_types: set[int] = set()
        self._rtx_to_media: dict[int, int] = {}
        self._reception: dict[int, _Reception] = {}
        self._media_ssrc: int | None = None
        self._own_ssrc: int | None = None
        self.pli = PliPacing()  # the room client sets it up for the track's layers
        # set by the room client: whether an RTP payload begins a keyframe
        self.starts_keyframe: Callable[[bytes], bool] | None = None
        self._rtcp_task: asyncio.Task[None] | None = None
        self._nack_task: asyncio.Task[None] | None = None
        self._gap = asyncio.Event()  # set when a NACK list has something to ask for
        self._sending: set[asyncio.Task[None]] = set()  # PLIs sent unasked, on their way
        self._failures = 0
        self._registered = False

    @property
    def sink(self) -> PacketSink | None:
        return self._sink

    @sink.setter
    def sink(self, sink: PacketSink | None) -> None:
        self._sink = sink
        self._stats = sink.reception if sink is not None else NackStats()
        for reception in self._reception.values():
            if reception.nacks is not None:
                reception.nacks.stats = self._stats

    # --- what the peer connection and the DTLS transport call -------------------------

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        # Unlike aiortc's receiver this runs again on every renegotiation: LiveKit reuses
        # an m-line for a new track with a new SSRC, which must be routed here too.
        for codec in parameters.codecs:
            if codec.payloadType is not None:
                self._codecs[codec.payloadType] = codec
                if codec.mimeType.lower() == "audio/red":
                    self._red_types.add(codec.payloadType)
        for encoding in parameters.encodings:
            if encoding.rtx:
                self._rtx_to_media[encoding.rtx.ssrc] = encoding.ssrc
        self.transport._register_rtp_receiver(self, parameters)
        self._registered = True
        if self._rtcp_task is None:
            self._rtcp_task = asyncio.create_task(self._run_rtcp())
        if self._nack_task is None and self._kind == "video":
            self._nack_task = asyncio.create_task(self._run_nacks())

    async def stop(self) -> None:
        if self._registered:
            self.transport._unregister_rtp_receiver(self)
            self._registered = False
        for task in (self._rtcp_task, self._nack_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._rtcp_task = self._nack_task = None

    def _handle_disconnect(self) -> None:
        if self._sink is not None:
            self._sink.on_bye()

    def _set_rtcp_ssrc(self, ssrc: int) -> None:
        self._own_ssrc = ssrc

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            now = RTCP_ARRIVAL.get()
            if now is None:
                now = time.monotonic()
            info = packet.sender_info
            reception = self._reception.get(packet.ssrc)
            if reception is not None:
                reception.lsr = (info.ntp_timestamp >> 16) & 0xFFFFFFFF
                reception.lsr_time = now
            if self._sink is not None:
                self._sink.on_sender_report(
                    SenderReport.from_ntp64(info.ntp_timestamp, info.rtp_timestamp, now)
                )
        elif isinstance(packet, RtcpByePacket) and self._sink is not None:
            self._sink.on_bye()

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        # aiortc's DTLS receive loop ends at the first exception, and the connection with
        # it: whatever a packet does to a reader stays with that packet (``express.py``
        # guards its own lane the same way).
        try:
            self.receive_rtp(packet)
        except Exception:
            self._note_failure("on an RTP packet")

    def receive_rtp(self, packet: RtpPacket, arrival: float | None = None) -> None:
        """One RTP packet, now: from aiortc's receive task or from ``express.py``, which
        knows when it reached the machine (``arrival``; None: it is reaching us now)."""
        seen = time.monotonic()
        if arrival is None:
            arrival = seen
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        if is_rtx(codec):
            original = self._unwrap_retransmission(packet, codec)
            if original is None:
                return
            self._stats.retransmissions += 1
            packet = original
        reception = self._reception.get(packet.ssrc)
        if reception is None:
            nacks = NackList(self._stats) if self._kind == "video" else None
            reception = self._reception[packet.ssrc] = _Reception(nacks)
            self._media_ssrc = packet.ssrc
        reception.add(packet.sequence_number, seen)  # NACKs go out on the loop's clock
        if reception.nacks is not None and reception.nacks.missing and not self._gap.is_set():
            self._gap.set()
        pli = self.pli
        if (pli.awaiting or pli.deferred) and self.starts_keyframe is not None and (
                packet.payload):
            if self.starts_keyframe(packet.payload):
                pli.keyframe_arrived()
            elif pli.due(seen):
                self._pli_unasked(seen)
        if self._sink is not None and packet.payload:
            if packet.payload_type in self._red_types:
                self._sink.on_red(packet, arrival)
            else:
                self._sink.on_rtp(packet, arrival, seen)

    # --- what the room client calls ----------------------------------------------------

    async def request_keyframe(self, *, after_recovery: bool = False) -> bool:
        """Send an RTCP PLI for the track's current SSRC, unless the SFU would throttle
        it (``PliPacing``: its keyframe is on its way); False if no SSRC is known yet.
        ``after_recovery`` (a keyframe wanted for its own sake, not for a loss): while
        packets are being recovered, wait up to ``PLI_HOLD`` first."""
        if self._media_ssrc is None or self._own_ssrc is None:
            return False
        for _ in range(round(PLI_HOLD / NACK_TICK) if after_recovery else 0):
            since = self._recovering_since()
            if since is None or time.monotonic() - since >= PLI_HOLD:
                break
            await asyncio.sleep(NACK_TICK)
        now = time.monotonic()
        if not self.pli.may_send(now):
            self.pli.defer()
            return True
        logger.debug("PLI for %08x (%s; %s)", self._media_ssrc,
                     "a keyframe wanted" if after_recovery else "after a loss",
                     "again: no keyframe came" if self.pli.awaiting else "first")
        self.pli.sent(now)
        await self._send(self._pli_packet(self._own_ssrc, self._media_ssrc))
        return True

    # --- internals ---------------------------------------------------------------------

    def _pli_unasked(self, now: float) -> None:
        """Send the PLI ``PliPacing.due`` says is due, from the packet path: marked sent
        at once, so that the packets read with this one do not send it again, and sent
        once they are all read, unless a keyframe began among them."""
        if self._media_ssrc is None or self._own_ssrc is None:
            return
        logger.debug("PLI for %08x (%s)", self._media_ssrc,
                     "again: no keyframe came" if self.pli.awaiting else "deferred")
        self.pli.sent(now)
        task = asyncio.get_running_loop().create_task(
            self._send_unless_answered(self._pli_packet(self._own_ssrc, self._media_ssrc)))
        self._sending.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._sending.discard)

    async def _send_unless_answered(self, pli: bytes) -> None:
        # A keyframe read after the packet that found the PLI due, in the same batch:
        # the PLI would only stop the SFU's retransmissions until the next keyframe.
        if self.pli.awaiting:
            await self._send(pli)

    @staticmethod
    def _pli_packet(own_ssrc: int, media_ssrc: int) -> bytes:
        return bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=own_ssrc, media_ssrc=media_ssrc))

    def _recovering_since(self) -> float | None:
        """When the packet missing longest on this track was found missing, if any."""
        reception = self._reception.get(self._media_ssrc) if self._media_ssrc else None
        nacks = reception.nacks if reception is not None else None
        return nacks.oldest_missing_since() if nacks is not None else None

    def _unwrap_retransmission(
        self, packet: RtpPacket, codec: RTCRtpCodecParameters
    ) -> RtpPacket | None:
        # The SDP names the RTX SSRC (a=ssrc-group:FID); without it, a retransmission
        # belongs to the stream this m-line carries now.
        media_ssrc = self._rtx_to_media.get(packet.ssrc, self._media_ssrc)
        apt = codec.parameters.get("apt")
        if media_ssrc is None or len(packet.payload) < 2 or not isinstance(apt, int) or (
            apt not in self._codecs
        ):
            return None
        return unwrap_rtx(packet, payload_type=apt, ssrc=media_ssrc)

    async def _run_nacks(self) -> None:
        """Ask for what is missing, each packet on its own schedule (``media/nack.py``);
        asleep while nothing is."""
        while True:
            await self._gap.wait()
            try:
                wake = await self._send_due_nacks(time.monotonic())
            except Exception:  # the receive path goes on whatever happens here
                self._note_failure("sending NACKs")
                wake = None
            if wake is None:
                self._gap.clear()
            else:
                await asyncio.sleep(max(NACK_TICK, wake - time.monotonic()))

    async def _send_due_nacks(self, now: float) -> float | None:
        """Send the NACKs due now; when the next ones are (None: nothing missing)."""
        wake: float | None = None
        for ssrc, reception in list(self._reception.items()):
            nacks = reception.nacks
            if nacks is None:
                continue
            due = nacks.due(now)
            if due and self._own_ssrc is not None:
                for packet in nack_packets(self._own_ssrc, ssrc, due):
                    await self._send(packet)
            later = nacks.next_due()
            if later is not None and (wake is None or later < wake):
                wake = later
        return wake

    async def _run_rtcp(self) -> None:
        while True:
            await asyncio.sleep(RTCP_INTERVAL)
            try:
                await self._send_reports()
            except Exception:  # a bad report must not end every later one
                self._note_failure("sending receiver reports")

    async def _send_reports(self) -> None:
        if self._own_ssrc is None or not self._reception:
            return
        now = time.monotonic()
        reports = [rx.report(ssrc, now) for ssrc, rx in self._reception.items()
                   if rx.base is not None]
        await self._send(bytes(RtcpRrPacket(ssrc=self._own_ssrc, reports=reports[:31])))
        if self._kind == "video":
            ssrcs = list(self._reception)[-255:]
            await self._send(bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=self._own_ssrc,
                                                  media_ssrc=0,
                                                  fci=pack_remb_fci(REMB_BITRATE, ssrcs))))

    def _note_failure(self, what: str) -> None:
        self._failures += 1
        if self._failures in (1, 100):
            logger.exception("a %s receiver failed %s (%d times)", self._kind, what,
                             self._failures)

    async def _send(self, packet: bytes) -> None:
        # A transport going away raises; the room client notices that and rejoins.
        with contextlib.suppress(ConnectionError):
            await self.transport._send_rtp(packet)


def tap_transceivers(pc: RTCPeerConnection) -> dict[str, TapReceiver]:
    """Put a ``TapReceiver`` into every transceiver that lacks one; return them by mid.

    Call it after ``setRemoteDescription`` and before ``setLocalDescription``: aiortc
    starts receivers (``receive``) only once the answer is applied.
    """
    taps: dict[str, TapReceiver] = {}
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if not isinstance(receiver, TapReceiver):
            tap = TapReceiver(transceiver.kind, receiver.transport)
            tap._track = receiver._track
            tap._set_rtcp_ssrc(transceiver.sender._ssrc)
            transceiver._RTCRtpTransceiver__receiver = tap  # type: ignore[attr-defined]
            receiver = tap
        if transceiver.mid is not None:
            taps[transceiver.mid] = receiver
    return taps


async def start_late_receivers(pc: RTCPeerConnection) -> None:
    """Start the taps that aiortc skipped; call after every ``setLocalDescription``.

    aiortc starts a receiver only if its DTLS transport is already connected when the
    answer is applied. LiveKit sends a second offer (the subscribed tracks) right after
    the first (data channels only), often while that first handshake is still running:
    aiortc then never starts the new receivers and their packets are dropped. This waits
    for the transport and starts them with the parameters aiortc would have used.
    """
    remote_rtp = pc._RTCPeerConnection__remoteRtp  # type: ignore[attr-defined]
    async with asyncio.timeout(DTLS_CONNECT_TIMEOUT):
        for transceiver in pc.getTransceivers():
            tap = transceiver.receiver
            if not isinstance(tap, TapReceiver) or transceiver.currentDirection not in (
                "recvonly", "sendrecv"
            ):
                continue
            while tap.transport.state != "connected":
                if tap.transport.state in ("failed", "closed"):
                    return  # the room client sees the failure and rejoins
                await asyncio.sleep(0.02)
            if not tap._registered:
                await tap.receive(remote_rtp(transceiver))
