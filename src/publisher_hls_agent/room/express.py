"""The express lane: RTP from the socket to the tap in one synchronous call.

aiortc hands every datagram through an asyncio queue: aioice's protocol first tries to
parse it as STUN, then puts it on the connection's queue, and the DTLS transport's
receive task wakes up to take it, a future and a task switch per packet. Once the DTLS
handshake is done, SRTP packets need none of that: this reads the nominated pair's
socket itself (or, where it cannot, wraps the pair's datagram callback) so that SRTP
(never STUN, never DTLS: RFC 7983 tells them apart by the first byte) is decrypted,
parsed and routed on the spot. SRTCP is decrypted here too and handed to aiortc's own
RTCP handling, in a task that knows when its datagram arrived (``tap.RTCP_ARRIVAL``:
a sender report's arrival is what receiver reports and the A/V alignment measure from).
STUN and DTLS still take aiortc's road, so nothing changes for them.

The header is parsed here too, without its extensions: aiortc parses every one of them
(abs-send-time, transport-cc, audio level...) into a new object per packet, and nothing
on this path reads them (aiortc's router routes by SSRC and payload type).

It also reads the socket dry, on a timer. asyncio's datagram transport reads one
datagram per turn of the event loop, and a video frame comes as a burst of packets: a
turn (an epoll call, the loop's bookkeeping) per packet was the largest single cost of a
recording process. Read dry at each wake-up, a burst cost one turn, and a recording
still woke its process about 100 times a second (50 audio packets, 30 video frames).
Read every ``READ_EVERY`` instead, with the socket out of epoll, it wakes 50 times: a
tenth less CPU per recording than read dry at each wake-up, measured. A gap is then
known, and asked for, up to ``READ_EVERY`` later, which the reorder window does not
notice.

Each datagram is dated by the kernel (``SO_TIMESTAMPNS``) as it reaches the socket. A
process that falls behind (a busy machine) reads seconds of datagrams at once: dated by
the loop's clock they would seem to arrive together, and the pause before the next read
would seem a pause of the stream. The frame assembler would then give up packets whose
retransmissions came in time (``media/assembler.py`` counts a gap's wait in arrival
time), and the start alignment of the first frames would be off by the lag.

Like ``tap.py`` this is pinned to aiortc 1.16.0 and aioice 0.13.0: it relies on
``RTCDtlsTransport._rx_srtp``, ``_rtp_router`` and ``_handle_rtcp_data``, on
``RTCIceTransport._connection`` and on aioice's ``Connection._nominated`` pairs and
their ``protocol``, and on asyncio's selector datagram transport (``_sock``, ``_loop``
and the loop's ``_remove_reader``); ``tests/unit/test_tap.py`` fails
if an upgrade moves them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import HeaderExtensions, RtpPacket, is_rtcp

from .tap import RTCP_ARRIVAL, TapReceiver

logger = logging.getLogger(__name__)

_OPENED = "_publisher_hls_express_lane"
# The kernel's default (about 200 KB) holds some 90 full-size datagrams, 0.4 s of a
# 720p30 stream: a process stalled longer (a busy machine, a garbage collection) lost
# packets in the socket, and frames with them. 4 MiB holds seconds.
RECEIVE_BUFFER = 4 << 20
# Datagrams read at most per wake-up, so that one busy socket cannot hold the event
# loop (a 720p frame is about ten; the RTCP and timers of the others wait at most this).
DRAIN_MOST = 64
READ_EVERY = 0.02  # seconds between two reads of a recording's socket
MAX_DATAGRAM = 65_535
# Linux's SO_TIMESTAMPNS (and SCM_TIMESTAMPNS), which Python's socket module does not
# name: each datagram comes with the CLOCK_REALTIME instant it was queued, a timespec.
SO_TIMESTAMPNS = 35 if sys.platform.startswith("linux") else None
_TIMESPEC = struct.Struct("@ll")  # struct timespec: time_t and long, longs on Linux
# A date further back than this is a step of the wall clock, not a wait in the socket
# (which holds RECEIVE_BUFFER: seconds): the reading's own time is used instead.
MOST_WAITED = 30.0


class _NoCounter:
    value = 0


# Socket reads begun in this process: the progress a watchdog in another process reads
# (``worker/liveness.py``: a starved process moves, a hung one does not). A counter in
# shared memory when the recording process sets one.
_progress: Any = _NoCounter()


def count_reads_in(counter: Any | None) -> None:
    """Advance ``counter.value`` (a ``multiprocessing`` shared integer) at each read;
    None: count nowhere."""
    global _progress
    _progress = _NoCounter() if counter is None else counter


def open_express_lane(dtls: RTCDtlsTransport) -> bool:
    """Take SRTP packets of ``dtls`` straight to their receivers; True once done (also
    when it was already). Call when the transport is connected."""
    if getattr(dtls, _OPENED, False):
        return True
    srtp = dtls._rx_srtp
    connection = dtls.transport._connection
    pairs = list(connection._nominated.values())
    if srtp is None or not pairs:
        return False
    router = dtls._rtp_router
    failures = 0
    handling: set[asyncio.Task[None]] = set()  # RTCP being handled (the loop keeps weak refs)

    def handled(task: asyncio.Task[None]) -> None:
        nonlocal failures
        handling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            failures += 1
            if failures in (1, 100):
                logger.error("a receiver failed on RTCP", exc_info=task.exception())

    def receive_rtcp(data: bytes, arrival: float | None) -> None:
        try:
            clear = srtp.unprotect_rtcp(data)
        except pylibsrtp.Error:
            return  # what aiortc does too
        # The task copies the context as it is now: its handlers see this arrival.
        token = RTCP_ARRIVAL.set(time.monotonic() if arrival is None else arrival)
        try:
            task = asyncio.get_running_loop().create_task(dtls._handle_rtcp_data(clear))
        finally:
            RTCP_ARRIVAL.reset(token)
        handling.add(task)
        task.add_done_callback(handled)

    def receive(data: bytes, arrival: float | None) -> None:
        nonlocal failures
        if is_rtcp(data):
            receive_rtcp(data, arrival)
            return
        try:
            packet = parse_rtp(srtp.unprotect(data))
        except (pylibsrtp.Error, ValueError):
            return  # what aiortc does too: a packet that does not decrypt or parse is gone
        receiver = router.route_rtp(packet)
        if isinstance(receiver, TapReceiver):  # every receiver the room client makes
            try:
                receiver.receive_rtp(packet, arrival)
            except Exception:  # never into the socket's callback
                failures += 1
                if failures in (1, 100):
                    logger.exception("a tap failed on an RTP packet")

    for pair in pairs:
        transport = getattr(pair.protocol, "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            enlarge_receive_buffer(sock)
        if transport is None or not read_in_batches(transport, pair.protocol, receive):
            _wrap(pair.protocol, receive)  # asyncio's reader: dated when it is read
    setattr(dtls, _OPENED, True)
    return True


_HEADER = struct.Struct("!BBHII")
_NO_EXTENSIONS = HeaderExtensions()


class _Packet(RtpPacket):
    """An ``RtpPacket`` as ``parse_rtp`` makes it: no extensions, made in one call."""

    def __init__(self, marker_type: int, sequence_number: int, timestamp: int, ssrc: int,
                 payload: bytes, csrc: list[int], padding_size: int) -> None:
        self.version = 2
        self.marker = marker_type >> 7
        self.payload_type = marker_type & 0x7F
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrc = csrc
        self.extensions = _NO_EXTENSIONS  # shared: nothing on this path writes it
        self.payload = payload
        self.padding_size = padding_size


def parse_rtp(data: bytes) -> RtpPacket:
    """``RtpPacket.parse`` less the header extensions (skipped, not read), refusing
    with a ValueError what it refuses."""
    size = len(data)
    if size < 12:
        raise ValueError("an RTP packet of less than 12 bytes")
    first, marker_type, sequence_number, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise ValueError("not RTP version 2")
    count = first & 0x0F
    start = 12 + 4 * count
    if size < start:
        raise ValueError("an RTP packet with truncated CSRCs")
    csrc = list(struct.unpack_from(f"!{count}I", data, 12)) if count else []
    if first & 0x10:
        if size < start + 4:
            raise ValueError("an RTP packet with a truncated extension header")
        start += 4 + 4 * int.from_bytes(data[start + 2:start + 4], "big")
        if size < start:
            raise ValueError("an RTP packet with truncated extensions")
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if not padding or padding > size - start:
            raise ValueError("an RTP packet with invalid padding")
    return _Packet(marker_type, sequence_number, timestamp, ssrc,
                   data[start:size - padding], csrc, padding)


def enlarge_receive_buffer(sock: socket.socket, size: int = RECEIVE_BUFFER) -> int:
    """Ask for a ``size`` receive buffer, past ``net.core.rmem_max`` where the process
    may (SO_RCVBUFFORCE needs CAP_NET_ADMIN); the size the kernel granted."""
    for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
            break
        except OSError:
            continue
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


def read_in_batches(transport: Any, protocol: Any,
                    srtp: Callable[[bytes, float | None], None] | None = None, *,
                    every: float = READ_EVERY) -> bool:
    """Read every datagram waiting (up to ``DRAIN_MOST`` at a time), where asyncio
    reads one per turn of the loop: every ``every`` seconds, with the socket of
    ``transport`` out of epoll, and at the loop's next turn while a backlog lasts. True
    if the transport is the selector loop's datagram transport this can do it for.
    What the transport did per datagram is done for each: errors go to
    ``error_received``, data to the protocol; SRTP and SRTCP (RFC 7983's first byte) to
    ``srtp`` if given, with its arrival on the ``time.monotonic`` clock (None where the
    kernel does not date datagrams)."""
    sock = getattr(transport, "_sock", None)
    loop: Any = getattr(transport, "_loop", None)
    remove_reader = getattr(loop, "_remove_reader", None)
    if not isinstance(transport, asyncio.BaseTransport) or not isinstance(
            sock, socket.socket) or sock.type != socket.SOCK_DGRAM or remove_reader is None:
        return False
    read = _dated_reader(sock)
    slow = protocol.datagram_received

    def read_ready() -> bool:
        """Read what waits; True if ``DRAIN_MOST`` were read (more may wait)."""
        _progress.value += 1
        # The wall clock's instants (the kernel's dates) on the monotonic clock; read
        # once a wake-up: a few microseconds apart, that is all the two clocks drift.
        now = time.monotonic()
        shift = now - time.time()
        for _ in range(DRAIN_MOST):
            if transport.is_closing():
                return False
            try:
                data, addr, dated = read()
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:  # an ICMP error, say: the transport's own handling
                protocol.error_received(exc)
                return False
            if srtp is None or not _is_srtp_or_srtcp(data):
                slow(data, addr)
                continue
            arrival = None if dated is None else dated + shift
            # Undated, dated as it was read (the kernel turns dating on in deferred
            # work), or the wall clock stepped: it counts as arriving now (None).
            srtp(data, arrival if arrival is not None and now - MOST_WAITED < arrival <= now
                 else None)
        return True

    def tick() -> None:
        if transport.is_closing():  # its socket is closed: nothing to read any more
            return
        more = False
        try:
            more = read_ready()
        finally:  # whatever a datagram's handler raised, the reading goes on
            if more:  # a backlog: read on at the loop's next turn
                loop.call_soon(tick)
            else:
                loop.call_later(every, tick)

    # The transport's own one-datagram reader, gone for good (the public remove_reader
    # refuses a transport's socket).
    remove_reader(sock.fileno())
    loop.call_soon(tick)
    return True


def _dated_reader(sock: socket.socket) -> Callable[[], tuple[bytes, Any, float | None]]:
    """A function reading one datagram of ``sock``: its bytes, its sender, and the
    instant (``time.time``'s clock) the kernel queued it, None if the kernel does not."""
    recvfrom = sock.recvfrom

    def undated() -> tuple[bytes, Any, float | None]:
        data, addr = recvfrom(MAX_DATAGRAM)
        return data, addr, None

    if SO_TIMESTAMPNS is None:
        return undated
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return undated
    recvmsg = sock.recvmsg
    space = socket.CMSG_SPACE(_TIMESPEC.size)
    unpack = _TIMESPEC.unpack_from

    def dated() -> tuple[bytes, Any, float | None]:
        data, ancillary, _flags, addr = recvmsg(MAX_DATAGRAM, space)
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and (
                    len(value) >= _TIMESPEC.size):
                seconds, nanoseconds = unpack(value)
                return data, addr, seconds + nanoseconds * 1e-9
        return data, addr, None
    return dated


def _wrap(protocol: Any, receive: Callable[[bytes, float | None], None]) -> None:
    slow = protocol.datagram_received

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
        if _is_srtp_or_srtcp(data):
            receive(data, None)
        else:
            slow(data, addr)

    protocol.datagram_received = datagram_received


def _is_srtp_or_srtcp(data: bytes) -> bool:
    """RTP or RTCP, by RFC 7983's first byte (128-191): not STUN, not DTLS."""
    return 127 < data[0] < 192
