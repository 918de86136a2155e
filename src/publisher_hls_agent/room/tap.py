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
from collections.abc import Iterable
from typing import Any, Protocol

from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    clamp_packets_lost,
    pack_remb_fci,
    unwrap_rtx,
)

from ..media.rtp import SenderReport, sequence_unwrapper

logger = logging.getLogger(__name__)

# What the recorder tells the SFU it can take. It sits next to the server, and a
# recording wants the best layer, so it never asks the SFU to back off.
REMB_BITRATE = 50_000_000
RTCP_INTERVAL = 1.0
NACK_HISTORY = 256  # sequence numbers a missing packet is still asked for
DTLS_CONNECT_TIMEOUT = 15.0


class PacketSink(Protocol):
    """Where a track's packets go. Called on the event loop, once per packet."""

    def on_rtp(self, packet: RtpPacket, arrival: float) -> None: ...

    def on_sender_report(self, report: SenderReport) -> None: ...

    def on_bye(self) -> None: ...


class _Reception:
    """Per-SSRC counters for receiver reports and NACKs; a few integer operations per
    packet (aiortc's own version computes jitter and walks sets on every packet)."""

    __slots__ = ("base", "expected_prior", "highest", "lsr", "lsr_time", "missing",
                 "received", "received_prior", "unwrapper")

    def __init__(self) -> None:
        self.unwrapper = sequence_unwrapper()
        self.base: int | None = None
        self.highest = 0
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.missing: set[int] = set()
        self.lsr = 0
        self.lsr_time = 0.0

    def add(self, sequence: int) -> list[int]:
        """Count a packet; return the sequence numbers newly found missing."""
        seq = self.unwrapper.unwrap(sequence)
        self.received += 1
        if self.base is None:
            self.base = self.highest = seq
            return []
        if seq > self.highest:
            newly_missing = list(range(self.highest + 1, seq)) if seq > self.highest + 1 else []
            self.highest = seq
            if newly_missing:
                self.missing.update(newly_missing[-NACK_HISTORY:])
            return newly_missing
        if self.missing:
            self.missing.discard(seq)
        return []

    def report(self, ssrc: int, now: float) -> RtcpReceiverInfo:
        assert self.base is not None
        expected = self.highest - self.base + 1
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior, self.received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = (lost_interval << 8) // expected_interval if lost_interval > 0 else 0
        self.missing = {s for s in self.missing if s > self.highest - NACK_HISTORY}
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
        self.sink: PacketSink | None = None
        self._codecs: dict[int, RTCRtpCodecParameters] = {}
        self._rtx_to_media: dict[int, int] = {}
        self._reception: dict[int, _Reception] = {}
        self._media_ssrc: int | None = None
        self._own_ssrc: int | None = None
        self._rtcp_task: asyncio.Task[None] | None = None
        self._nacks: set[asyncio.Future[None]] = set()  # in flight
        self._registered = False

    # --- what the peer connection and the DTLS transport call -------------------------

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        # Unlike aiortc's receiver this runs again on every renegotiation: LiveKit reuses
        # an m-line for a new track with a new SSRC, which must be routed here too.
        for codec in parameters.codecs:
            if codec.payloadType is not None:
                self._codecs[codec.payloadType] = codec
        for encoding in parameters.encodings:
            if encoding.rtx:
                self._rtx_to_media[encoding.rtx.ssrc] = encoding.ssrc
        self.transport._register_rtp_receiver(self, parameters)
        self._registered = True
        if self._rtcp_task is None:
            self._rtcp_task = asyncio.create_task(self._run_rtcp())

    async def stop(self) -> None:
        if self._registered:
            self.transport._unregister_rtp_receiver(self)
            self._registered = False
        if self._rtcp_task is not None:
            self._rtcp_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rtcp_task
            self._rtcp_task = None

    def _handle_disconnect(self) -> None:
        if self.sink is not None:
            self.sink.on_bye()

    def _set_rtcp_ssrc(self, ssrc: int) -> None:
        self._own_ssrc = ssrc

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            now = time.monotonic()
            info = packet.sender_info
            reception = self._reception.get(packet.ssrc)
            if reception is not None:
                reception.lsr = (info.ntp_timestamp >> 16) & 0xFFFFFFFF
                reception.lsr_time = now
            if self.sink is not None:
                self.sink.on_sender_report(
                    SenderReport.from_ntp64(info.ntp_timestamp, info.rtp_timestamp, now)
                )
        elif isinstance(packet, RtcpByePacket) and self.sink is not None:
            self.sink.on_bye()

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self.receive_rtp(packet)

    def receive_rtp(self, packet: RtpPacket) -> None:
        """One RTP packet, now: from aiortc's receive task or from ``express.py``."""
        arrival = time.monotonic()
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        if is_rtx(codec):
            original = self._unwrap_retransmission(packet, codec)
            if original is None:
                return
            packet = original
        reception = self._reception.get(packet.ssrc)
        if reception is None:
            reception = self._reception[packet.ssrc] = _Reception()
            self._media_ssrc = packet.ssrc
        newly_missing = reception.add(packet.sequence_number)
        if newly_missing and self._kind == "video":
            nack = asyncio.ensure_future(self._send_nack(packet.ssrc, newly_missing))
            self._nacks.add(nack)
            nack.add_done_callback(self._nacks.discard)
        if self.sink is not None and packet.payload:
            self.sink.on_rtp(packet, arrival)

    # --- what the room client calls ----------------------------------------------------

    async def request_keyframe(self) -> bool:
        """Send an RTCP PLI for the track's current SSRC; False if none is known yet."""
        if self._media_ssrc is None or self._own_ssrc is None:
            return False
        await self._send(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=self._own_ssrc,
                                        media_ssrc=self._media_ssrc))
        return True

    # --- internals ---------------------------------------------------------------------

    def _unwrap_retransmission(
        self, packet: RtpPacket, codec: RTCRtpCodecParameters
    ) -> RtpPacket | None:
        media_ssrc = self._rtx_to_media.get(packet.ssrc)
        apt = codec.parameters.get("apt")
        if media_ssrc is None or len(packet.payload) < 2 or not isinstance(apt, int) or (
            apt not in self._codecs
        ):
            return None
        return unwrap_rtx(packet, payload_type=apt, ssrc=media_ssrc)

    async def _send_nack(self, media_ssrc: int, lost: Iterable[int]) -> None:
        if self._own_ssrc is None:
            return
        nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=self._own_ssrc, media_ssrc=media_ssrc)
        nack.lost = [seq & 0xFFFF for seq in lost]
        await self._send(nack)

    async def _run_rtcp(self) -> None:
        while True:
            await asyncio.sleep(RTCP_INTERVAL)
            if self._own_ssrc is None or not self._reception:
                continue
            now = time.monotonic()
            reports = [rx.report(ssrc, now) for ssrc, rx in self._reception.items()
                       if rx.base is not None]
            await self._send(RtcpRrPacket(ssrc=self._own_ssrc, reports=reports))
            if self._kind == "video":
                ssrcs = list(self._reception)
                await self._send(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=self._own_ssrc,
                                                media_ssrc=0,
                                                fci=pack_remb_fci(REMB_BITRATE, ssrcs)))
                for ssrc, rx in self._reception.items():
                    if rx.missing:  # ask once more for what a first NACK did not bring
                        await self._send_nack(ssrc, sorted(rx.missing))

    async def _send(self, packet: Any) -> None:
        # A transport going away raises; the room client notices that and rejoins.
        with contextlib.suppress(ConnectionError):
            await self.transport._send_rtp(bytes(packet))


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
