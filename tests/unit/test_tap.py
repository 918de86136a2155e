"""The aiortc seam, held to the exact aiortc it is pinned to.

These drive aiortc's own DTLS transport routing (no network: packets are handed to the
transport as if they had just been decrypted) and would fail if an aiortc upgrade moved
any internal the tap relies on.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import socket
import struct
import time

import pylibsrtp
import pytest
from aiortc import RTCCertificate, RTCIceGatherer, RTCIceTransport, RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
)
from aiortc.rtp import (
    RtcpPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    wrap_rtx,
)

from publisher_hls_agent.media.nack import NACK_INTERVAL, NackStats
from publisher_hls_agent.media.pli import MAX_RETRIES, RETRY, PliPacing
from publisher_hls_agent.media.rtp import SenderReport
from publisher_hls_agent.room.express import (
    DRAIN_MOST,
    RECEIVE_BUFFER,
    count_reads_in,
    enlarge_receive_buffer,
    open_express_lane,
    parse_rtp,
    read_in_batches,
)
from publisher_hls_agent.room.tap import RTCP_ARRIVAL, TapReceiver, tap_transceivers

pytestmark = pytest.mark.unit

H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=125)
RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=107,
                            parameters={"apt": 125})
MEDIA_SSRC, RTX_SSRC, OWN_SSRC = 1111, 2222, 3333


class Sink:
    def __init__(self) -> None:
        self.packets: list[tuple[int, int, bytes]] = []
        self.reports: list[SenderReport] = []
        self.byes = 0
        self.reception = NackStats()

    def on_rtp(self, packet: RtpPacket, arrival: float, seen: float | None = None) -> None:
        self.packets.append((packet.ssrc, packet.sequence_number, packet.payload))

    def on_sender_report(self, report: SenderReport) -> None:
        self.reports.append(report)

    def on_bye(self) -> None:
        self.byes += 1


@pytest.fixture
async def wired() -> tuple[RTCDtlsTransport, TapReceiver, Sink, list[bytes]]:
    transport = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()),
                                 [RTCCertificate.generateCertificate()])
    sent: list[bytes] = []

    async def capture(data: bytes) -> None:
        sent.append(data)

    transport._send_rtp = capture  # type: ignore[method-assign]  # the wire, not the seam
    tap = TapReceiver("video", transport)
    tap._set_rtcp_ssrc(OWN_SSRC)
    sink = Sink()
    tap.sink = sink
    await tap.receive(RTCRtpReceiveParameters(
        codecs=[H264, RTX],
        encodings=[RTCRtpDecodingParameters(ssrc=MEDIA_SSRC, payloadType=125,
                                            rtx=RTCRtpRtxParameters(ssrc=RTX_SSRC))]))
    yield transport, tap, sink, sent
    await tap.stop()


def rtp(seq: int, payload: bytes, ssrc: int = MEDIA_SSRC, pt: int = 125) -> RtpPacket:
    return RtpPacket(payload_type=pt, sequence_number=seq, timestamp=9000, ssrc=ssrc,
                     payload=payload)


async def test_rtp_is_routed_to_the_sink_untouched(wired) -> None:  # type: ignore[no-untyped-def]
    transport, _, sink, _ = wired
    await transport._handle_rtp_data(rtp(10, b"\x65abc").serialize(), arrival_time_ms=0)
    await transport._handle_rtp_data(rtp(11, b"\x41def").serialize(), arrival_time_ms=0)
    assert sink.packets == [(MEDIA_SSRC, 10, b"\x65abc"), (MEDIA_SSRC, 11, b"\x41def")]


async def test_retransmissions_are_unwrapped(wired) -> None:  # type: ignore[no-untyped-def]
    transport, _, sink, _ = wired
    original = rtp(500, b"\x41lost-and-found")
    retransmission = wrap_rtx(original, payload_type=107, sequence_number=7, ssrc=RTX_SSRC)
    await transport._handle_rtp_data(retransmission.serialize(), arrival_time_ms=0)
    assert sink.packets == [(MEDIA_SSRC, 500, b"\x41lost-and-found")]


def plis(sent: list[bytes]) -> int:
    """PLIs sent (not the REMBs, also payload-specific feedback, once a second)."""
    return sum(1 for packet in sent if struct.unpack("!BB", packet[:2]) == (0x81, 206))


async def deliver(transport: RTCDtlsTransport, seq: int, payload: bytes = b"\x41x") -> None:
    """One packet through the transport, then a turn of the loop: a PLI the tap sends
    unasked goes out from a task of its own."""
    await transport._handle_rtp_data(rtp(seq, payload).serialize(), arrival_time_ms=0)
    await asyncio.sleep(0)


def nacked(sent: list[bytes]) -> list[list[int]]:
    return [p.lost for data in sent for p in RtcpPacket.parse(data)
            if isinstance(p, RtcpRtpfbPacket) and p.fmt == 1]


async def test_a_gap_is_nacked_at_once_and_again_until_it_is_filled(wired) -> None:  # type: ignore[no-untyped-def]
    transport, _, sink, sent = wired
    for seq in (1, 2, 5):
        await transport._handle_rtp_data(rtp(seq, b"\x41x").serialize(), arrival_time_ms=0)
    await asyncio.sleep(0.01)  # NACKs go out from their own task: the packet path never waits
    assert nacked(sent) == [[3, 4]]
    await asyncio.sleep(NACK_INTERVAL * 1.5)
    assert nacked(sent) == [[3, 4], [3, 4]]  # LiveKit ignores the first one often
    retransmission = wrap_rtx(rtp(3, b"\x41y"), payload_type=107, sequence_number=1,
                              ssrc=RTX_SSRC)
    await transport._handle_rtp_data(retransmission.serialize(), arrival_time_ms=0)
    sent.clear()
    await asyncio.sleep(NACK_INTERVAL * 1.5)
    assert nacked(sent) and all(lost == [4] for lost in nacked(sent))
    assert (sink.reception.missing, sink.reception.recovered,
            sink.reception.retransmissions) == (2, 1, 1)


async def test_a_loss_across_the_sequence_wrap_keeps_rtcp_alive(wired) -> None:  # type: ignore[no-untyped-def]
    transport, tap, _, sent = wired
    for seq in (65533, 1, 3):  # 65534, 65535, 0 and 2 lost
        await transport._handle_rtp_data(rtp(seq, b"\x41x").serialize(), arrival_time_ms=0)
    await asyncio.sleep(0.01)
    assert sorted(s & 0xFFFF for lost in nacked(sent) for s in lost) == [0, 2, 65534, 65535]
    assert tap._nack_task is not None and not tap._nack_task.done()
    await tap._send_reports()  # what the 1 s task does: no error either


async def test_a_sequence_jump_does_not_amplify_into_a_huge_nack(wired) -> None:  # type: ignore[no-untyped-def]
    transport, _, _, sent = wired
    for seq in (1, 1 + 32_767):
        await transport._handle_rtp_data(rtp(seq, b"\x41x").serialize(), arrival_time_ms=0)
    await asyncio.sleep(0.01)
    assert sent == []


async def test_a_retransmission_from_an_unannounced_ssrc_fills_the_stream(wired) -> None:  # type: ignore[no-untyped-def]
    transport, _, sink, _ = wired
    await transport._handle_rtp_data(rtp(1, b"\x41x").serialize(), arrival_time_ms=0)
    tap = wired[1]
    tap._rtx_to_media.clear()  # an offer without a=ssrc-group:FID
    retransmission = wrap_rtx(rtp(0, b"\x41r"), payload_type=107, sequence_number=9,
                              ssrc=4444)
    tap.receive_rtp(retransmission)
    assert sink.packets[-1] == (MEDIA_SSRC, 0, b"\x41r")


async def test_sender_reports_reach_the_sink(wired) -> None:  # type: ignore[no-untyped-def]
    transport, _, sink, _ = wired
    await transport._handle_rtp_data(rtp(1, b"\x41x").serialize(), arrival_time_ms=0)
    report = RtcpSrPacket(ssrc=MEDIA_SSRC, sender_info=RtcpSenderInfo(
        ntp_timestamp=(3_900_000_000 << 32), rtp_timestamp=123456, packet_count=1,
        octet_count=3))
    await transport._handle_rtcp_data(bytes(report))
    assert [(r.ntp_seconds, r.rtp_timestamp) for r in sink.reports] == [(3_900_000_000, 123456)]


async def test_keyframe_request_is_a_pli_for_the_media_ssrc(wired) -> None:  # type: ignore[no-untyped-def]
    transport, tap, _, sent = wired
    assert await tap.request_keyframe() is False  # no SSRC seen yet
    await transport._handle_rtp_data(rtp(1, b"\x41x").serialize(), arrival_time_ms=0)
    assert await tap.request_keyframe() is True
    [pli] = RtcpPacket.parse(sent[-1])
    assert (pli.fmt, pli.ssrc, pli.media_ssrc) == (1, OWN_SSRC, MEDIA_SSRC)
    assert struct.unpack("!BB", sent[-1][:2])[1] == 206  # payload-specific feedback


async def test_an_unanswered_pli_is_repeated_and_an_answered_one_is_not(wired) -> None:  # type: ignore[no-untyped-def]
    """A PLI the SFU ignores after one it answered stops NACKs for nothing; one that
    brought no keyframe (lost on the way) is sent again soon (media/pli.py)."""
    transport, tap, _, sent = wired
    tap.starts_keyframe = lambda payload: payload[0] & 0x1F == 5  # an IDR slice
    tap.pli.throttle = 60.0  # (never past it in this test, however slow the machine)

    await transport._handle_rtp_data(rtp(1, b"\x41x").serialize(), arrival_time_ms=0)
    assert await tap.request_keyframe() is True and plis(sent) == 1
    assert await tap.request_keyframe() is True and plis(sent) == 1  # its keyframe is on its way
    await asyncio.sleep(RETRY)
    assert await tap.request_keyframe() is True and plis(sent) == 2  # none came: again

    await transport._handle_rtp_data(rtp(3, b"\x65x").serialize(), arrival_time_ms=0)  # IDR
    await asyncio.sleep(RETRY)
    assert await tap.request_keyframe() is True and plis(sent) == 2  # answered: the SFU throttles


async def test_the_tap_repeats_an_unanswered_pli_a_few_times_unasked(wired) -> None:  # type: ignore[no-untyped-def]
    """After a loss, nobody asks again while the frames are dropped: a PLI that was lost
    would cost the freeze until the publisher's next keyframe of its own (a second
    measured). The tap repeats it as packets come, until a keyframe comes, and only
    ``MAX_RETRIES`` times (each PLI stops the SFU's retransmissions to us)."""
    transport, tap, _, sent = wired
    tap.starts_keyframe = lambda payload: payload[0] & 0x1F == 5  # an IDR slice
    tap.pli.throttle = 60.0  # (never past it in this test, however slow the machine)
    seq = iter(range(1, 100))

    async def packet(payload: bytes = b"\x41x") -> None:
        await deliver(transport, next(seq), payload)

    await packet()
    assert await tap.request_keyframe() is True and plis(sent) == 1
    await packet()
    assert plis(sent) == 1  # its keyframe may be on its way
    for repeats in range(1, MAX_RETRIES + 1):
        await asyncio.sleep(RETRY)
        await packet()
        await packet()  # once per wait, however many packets come
        assert plis(sent) == 1 + repeats
    await asyncio.sleep(RETRY)
    await packet()
    assert plis(sent) == 1 + MAX_RETRIES  # enough: whoever wants a keyframe asks again

    assert await tap.request_keyframe() is True and plis(sent) == 2 + MAX_RETRIES
    await packet(b"\x65x")  # an IDR answers it
    await asyncio.sleep(RETRY)
    await packet()
    assert plis(sent) == 2 + MAX_RETRIES


async def test_a_pli_found_due_is_not_sent_when_a_keyframe_follows_in_the_same_read(
        wired) -> None:  # type: ignore[no-untyped-def]
    """The socket is read in batches: the repeat a packet finds due waits for the rest
    of the batch, and a keyframe there answers it. Sent anyway, it would stop the SFU's
    retransmissions until the next keyframe."""
    transport, tap, _, sent = wired
    tap.starts_keyframe = lambda payload: payload[0] & 0x1F == 5  # an IDR slice
    tap.pli.throttle = 60.0
    await transport._handle_rtp_data(rtp(1, b"\x41x").serialize(), arrival_time_ms=0)
    assert await tap.request_keyframe() is True and plis(sent) == 1
    await asyncio.sleep(RETRY)
    tap.receive_rtp(rtp(2, b"\x41x"))  # finds the repeat due
    tap.receive_rtp(rtp(3, b"\x65x"))  # the keyframe, in the same read
    await asyncio.sleep(0)
    assert plis(sent) == 1 and not tap.pli.awaiting


async def test_a_pli_asked_for_within_the_throttle_goes_once_past_it(wired) -> None:  # type: ignore[no-untyped-def]
    """A keyframe came and was broken by a packet lost for good: the PLI for it waits
    for the SFU's throttle, then goes with the next packet, nobody asking again."""
    transport, tap, _, sent = wired
    tap.starts_keyframe = lambda payload: payload[0] & 0x1F == 5  # an IDR slice
    tap.pli.throttle = 2 * RETRY
    seq = iter(range(1, 100))

    async def packet(payload: bytes = b"\x41x") -> None:
        await deliver(transport, next(seq), payload)

    await packet()
    assert await tap.request_keyframe() is True and plis(sent) == 1
    await packet(b"\x65x")  # its keyframe
    assert await tap.request_keyframe() is True and plis(sent) == 1  # within the throttle
    await packet()
    assert plis(sent) == 1
    await asyncio.sleep(2 * RETRY)
    await packet()
    await packet()
    assert plis(sent) == 2


async def test_tap_replaces_the_decoding_receiver_of_every_transceiver() -> None:
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        original = [t.receiver for t in pc.getTransceivers()]
        tap_transceivers(pc)
        taps = [t.receiver for t in pc.getTransceivers()]
        assert all(isinstance(t, TapReceiver) for t in taps)
        assert [t.transport for t in taps] == [r.transport for r in original]
        tap_transceivers(pc)  # idempotent
        assert [t.receiver for t in pc.getTransceivers()] == taps
    finally:
        await pc.close()


class Protocol:
    """Stands in for aioice's StunProtocol of the nominated pair: what it would have
    done with a datagram (STUN parsing, the connection's queue) is only recorded."""

    def __init__(self) -> None:
        self.slow: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.slow.append(data)


class Pair:
    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol


async def test_the_express_lane_decrypts_and_routes_srtp_at_once(wired) -> None:  # type: ignore[no-untyped-def]
    transport, _, sink, _ = wired
    key = os.urandom(30)
    profile = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    sender = pylibsrtp.Session(pylibsrtp.Policy(
        key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
    assert not open_express_lane(transport)  # no SRTP before the handshake: not yet
    transport._rx_srtp = pylibsrtp.Session(pylibsrtp.Policy(
        key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
    protocol = Protocol()
    transport.transport._connection._nominated = {1: Pair(protocol)}
    assert open_express_lane(transport) and open_express_lane(transport)  # once only
    protocol.datagram_received(sender.protect(rtp(20, b"\x65idr").serialize()), ("x", 1))
    protocol.datagram_received(sender.protect(rtp(21, b"\x41p").serialize()), ("x", 1))
    report = bytes(RtcpSrPacket(ssrc=MEDIA_SSRC, sender_info=RtcpSenderInfo(
        ntp_timestamp=1 << 32, rtp_timestamp=1, packet_count=1, octet_count=1)))
    stun = b"\x00\x01\x00\x00" + bytes(16)
    dtls = b"\x16\xfe\xfd" + bytes(10)
    for other in (sender.protect_rtcp(report), stun, dtls):
        protocol.datagram_received(other, ("x", 1))
    assert sink.packets == [(MEDIA_SSRC, 20, b"\x65idr"), (MEDIA_SSRC, 21, b"\x41p")]
    assert protocol.slow == [stun, dtls]  # STUN and DTLS took aiortc's road
    read_at = time.monotonic()
    await asyncio.sleep(0)  # SRTCP is handled by aiortc's RTCP code, in a task of its own
    [received] = sink.reports
    assert received.rtp_timestamp == 1 and 0 <= read_at - received.received_at < 0.05
    protocol.datagram_received(b"\x80" + os.urandom(40), ("x", 1))  # does not decrypt
    protocol.datagram_received(b"\x80\xc8" + os.urandom(40), ("x", 1))  # nor this RTCP
    await asyncio.sleep(0)
    assert len(sink.packets) == 2 and len(sink.reports) == 1


async def test_a_sender_report_is_dated_by_its_arrival(wired) -> None:  # type: ignore[no-untyped-def]
    """Handled late (a busy process reads its socket a second late), a sender report
    still counts from its arrival: for the A/V alignment, and for our receiver reports'
    DLSR, from which the SFU computes the RTT it waits before answering a NACK."""
    transport, tap, sink, _ = wired
    await transport._handle_rtp_data(rtp(1, b"\x41x").serialize(), arrival_time_ms=0)
    report = RtcpSrPacket(ssrc=MEDIA_SSRC, sender_info=RtcpSenderInfo(
        ntp_timestamp=(3_900_000_000 << 32) | (1 << 31), rtp_timestamp=9, packet_count=1,
        octet_count=3))
    arrived = time.monotonic() - 1.0
    token = RTCP_ARRIVAL.set(arrived)
    try:
        await transport._handle_rtcp_data(bytes(report))
    finally:
        RTCP_ARRIVAL.reset(token)
    assert [r.received_at for r in sink.reports] == [arrived]
    block = tap._reception[MEDIA_SSRC].report(MEDIA_SSRC, arrived + 0.25)
    assert block.lsr == (3_900_000_000 << 16 | 1 << 15) & 0xFFFFFFFF
    assert block.dlsr == 0.25 * 65536


def test_the_receive_buffer_holds_seconds_of_media() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        default = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        granted = enlarge_receive_buffer(sock)
    assert granted > default
    assert granted >= min(RECEIVE_BUFFER, 2 * 212_992)  # at least rmem_max where capped


def fields(packet: RtpPacket) -> tuple[object, ...]:
    return (packet.version, packet.marker, packet.payload_type, packet.sequence_number,
            packet.timestamp, packet.ssrc, packet.csrc, packet.payload, packet.padding_size)


def test_the_express_lanes_parse_reads_what_aiortcs_reads_but_the_extensions() -> None:
    """Header extensions (as LiveKit sends them), CSRCs, padding: every field the same as
    aiortc's parse; and what aiortc refuses, refused too (random cuts and bytes), but for
    the extensions' contents, which are not read."""
    import random

    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap

    class Unread(HeaderExtensionsMap):
        def get(self, extension_profile: int, extension_value: bytes) -> HeaderExtensions:
            return HeaderExtensions()

    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=2, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
        RTCRtpHeaderExtensionParameters(id=3, uri="http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"),
    ]))
    draw = random.Random(14)
    packets = []
    for index in range(300):
        packet = RtpPacket(payload_type=draw.randrange(128), marker=draw.randrange(2),
                           sequence_number=draw.randrange(1 << 16),
                           timestamp=draw.randrange(1 << 32), ssrc=draw.randrange(1 << 32),
                           payload=os.urandom(draw.randrange(0, 1200)))
        packet.csrc = [draw.randrange(1 << 32) for _ in range(draw.choice((0, 0, 0, 2)))]
        if index % 3:
            packet.extensions.abs_send_time = draw.randrange(1 << 24)
            packet.extensions.transport_sequence_number = draw.randrange(1 << 16)
        data = packet.serialize(extensions)
        if index % 5 == 0:  # padded, as an SFU's probes are
            size = draw.randrange(1, 256)
            data = bytes([data[0] | 0x20]) + data[1:] + bytes(size - 1) + bytes([size])
        packets.append(data)
    for data in packets:
        assert fields(parse_rtp(data)) == fields(RtpPacket.parse(data, extensions))
    for data in packets:
        broken = bytearray(data[:draw.randrange(len(data) + 1)])
        if broken and draw.randrange(2):
            broken[draw.randrange(len(broken))] = draw.randrange(256)
        try:
            theirs: object = fields(RtpPacket.parse(bytes(broken), Unread()))
        except ValueError:
            theirs = ValueError
        try:
            ours: object = fields(parse_rtp(bytes(broken)))
        except ValueError:
            ours = ValueError
        assert ours == theirs, bytes(broken).hex()


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.errors: list[OSError] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)

    def error_received(self, exc: Exception) -> None:
        assert isinstance(exc, OSError)
        self.errors.append(exc)


async def test_each_datagram_is_dated_by_its_arrival_not_its_reading() -> None:
    """A process that falls behind reads its datagrams late; each comes with the
    instant the kernel queued it (SO_TIMESTAMPNS), on the monotonic clock. RTP goes to
    the express lane, anything else (STUN here) to the protocol."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        Datagrams, local_addr=("127.0.0.1", 0))
    address = transport.get_extra_info("sockname")
    dated: list[tuple[bytes, float | None, float]] = []

    def srtp(data: bytes, arrival: float | None) -> None:
        dated.append((data, arrival, time.monotonic()))

    try:
        assert read_in_batches(transport, protocol, srtp)
        # Linux turns dating on in deferred work: a datagram queued in the same instant
        # may be dated when it is read (and then counts as arriving then).
        await asyncio.sleep(0.1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"\x80\x60rtp", address)
            sent_at = time.monotonic()
            sender.sendto(b"\x00\x01stun", address)
        time.sleep(0.3)  # noqa: ASYNC251 (the loop held up: the datagrams wait in the socket)
        for _ in range(100):
            if dated and protocol.received:
                break
            await asyncio.sleep(0.01)
    finally:
        transport.close()
    [(data, arrival, read_at)] = dated
    assert data == b"\x80\x60rtp" and protocol.received == [b"\x00\x01stun"]
    assert arrival is not None
    assert abs(arrival - sent_at) < 0.05
    assert read_at - arrival >= 0.25


async def test_on_a_timer_datagrams_are_read_in_batches_and_a_backlog_at_once() -> None:
    """asyncio reads one datagram per turn of the loop, and a recording woke its
    process for each audio packet and video frame; read every ``every`` seconds, the
    socket wakes it for none of them, and what waits is read in one turn. A backlog
    larger than one read's share is read on at once, not a share a tick."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        Datagrams, local_addr=("127.0.0.1", 0))
    address = transport.get_extra_info("sockname")
    reads = multiprocessing.get_context("forkserver").RawValue(ctypes.c_uint64, 0)
    count_reads_in(reads)  # what the recording process does for its watchdog
    try:
        assert read_in_batches(transport, protocol, every=0.5)
        await asyncio.sleep(0.05)  # the first read, at once
        before = reads.value
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for i in range(5):  # each would have woken the loop
                sender.sendto(bytes([i]), address)
                await asyncio.sleep(0.02)
            assert not protocol.received and reads.value == before
            for _ in range(200):
                if protocol.received:
                    break
                await asyncio.sleep(0.01)
            assert protocol.received == [bytes([i]) for i in range(5)]
            assert reads.value == before + 1  # in one read
            # A tick just read them; three shares now are all read at the next one
            # (half a second on), not one share a tick (which takes a second and a half).
            for i in range(3 * DRAIN_MOST):
                sender.sendto(i.to_bytes(2, "big"), address)
            await asyncio.sleep(0.75)
        assert len(protocol.received) == 5 + 3 * DRAIN_MOST
    finally:
        count_reads_in(None)
        transport.close()
    await asyncio.sleep(0.6)  # the transport closed: the timer ends with it
    assert not protocol.errors


async def test_on_a_timer_reading_goes_on_after_a_handler_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    """asyncio keeps a reader whose callback raised; a timer that raised would not come
    again, and the recording would hear nothing more."""
    class Raising(Datagrams):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            super().datagram_received(data, addr)
            if data == b"bad":
                raise RuntimeError("a handler's bug")

    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        Raising, local_addr=("127.0.0.1", 0))
    address = transport.get_extra_info("sockname")
    try:
        assert read_in_batches(transport, protocol, every=0.05)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"bad", address)
            await asyncio.sleep(0.2)
            sender.sendto(b"good", address)
            await asyncio.sleep(0.2)
    finally:
        transport.close()
    assert protocol.received == [b"bad", b"good"]
    assert "a handler's bug" in caplog.text


async def test_a_drained_socket_still_reports_its_errors() -> None:
    """An ICMP port unreachable (a connected UDP socket, nobody listening) reaches the
    protocol as asyncio's reader would pass it, and reading goes on after it."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        nobody = closed.getsockname()
    transport, protocol = await loop.create_datagram_endpoint(
        Datagrams, local_addr=("127.0.0.1", 0), remote_addr=nobody)
    try:
        assert read_in_batches(transport, protocol)
        transport.sendto(b"x")
        for _ in range(100):
            if protocol.errors:
                break
            await asyncio.sleep(0.01)
        assert protocol.errors and isinstance(protocol.errors[0], ConnectionRefusedError)
    finally:
        transport.close()


def test_only_a_datagram_transport_is_drained() -> None:
    assert not read_in_batches(object(), Datagrams())


async def test_a_reader_that_fails_on_a_packet_does_not_end_the_receive_loop(wired) -> None:  # type: ignore[no-untyped-def]
    transport, _, sink, _ = wired

    def broken(packet: RtpPacket, arrival: float) -> None:
        raise IndexError("a depacketizer bug")

    sink.on_rtp = broken
    await transport._handle_rtp_data(rtp(1, b"\x41x").serialize(), arrival_time_ms=0)  # no raise


async def test_a_keyframe_request_waits_while_fresh_losses_are_recovered(wired) -> None:  # type: ignore[no-untyped-def]
    """A PLI stops LiveKit's retransmissions to us until it forwards a keyframe: one the
    recorder wants for its own sake waits while a packet is being recovered (at most
    PLI_HOLD), and not for a packet likely lost for good; one wanted for a loss (the
    readers') goes at once."""
    import asyncio

    from publisher_hls_agent.room.tap import PLI_HOLD
    transport, tap, _, sent = wired
    await transport._handle_rtp_data(rtp(1, b"\x41x").serialize(), arrival_time_ms=0)
    await transport._handle_rtp_data(rtp(3, b"\x41x").serialize(), arrival_time_ms=0)  # 2 lost
    request = asyncio.ensure_future(tap.request_keyframe(after_recovery=True))
    await asyncio.sleep(PLI_HOLD / 3)
    assert plis(sent) == 0 and not request.done()  # waiting for the retransmission
    await transport._handle_rtp_data(rtp(2, b"\x41x").serialize(), arrival_time_ms=0)
    assert await asyncio.wait_for(request, PLI_HOLD) is True and plis(sent) == 1

    await transport._handle_rtp_data(rtp(5, b"\x41x").serialize(), arrival_time_ms=0)  # 4 lost
    tap.pli = PliPacing()  # (the pacing of PLIs is another rule: media/pli.py)
    assert await tap.request_keyframe() is True and plis(sent) == 2  # for a loss: at once
    await asyncio.sleep(PLI_HOLD)  # by now probably lost for good
    tap.pli = PliPacing()
    started = asyncio.get_running_loop().time()
    assert await tap.request_keyframe(after_recovery=True) is True and plis(sent) == 3
    assert asyncio.get_running_loop().time() - started < PLI_HOLD / 3
