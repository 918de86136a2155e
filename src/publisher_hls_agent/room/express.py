"""The express lane: RTP from the socket to the tap in one synchronous call.

aiortc hands every datagram through an asyncio queue: aioice's protocol first tries to
parse it as STUN, then puts it on the connection's queue, and the DTLS transport's
receive task wakes up to take it, a future and a task switch per packet. Once the DTLS
handshake is done, SRTP packets need none of that: this wraps the nominated pair's
datagram callback so that SRTP (never STUN, never DTLS: RFC 7983 tells them apart by
the first byte) is decrypted, parsed and routed on the spot. RTCP and everything else
still take aiortc's road, so nothing changes for them.

Like ``tap.py`` this is pinned to aiortc 1.16.0 and aioice 0.13.0: it relies on
``RTCDtlsTransport._rx_srtp``, ``_rtp_router`` and ``_rtp_header_extensions_map``, on
``RTCIceTransport._connection`` and on aioice's ``Connection._nominated`` pairs and
their ``protocol``; ``tests/unit/test_tap.py`` fails if an upgrade moves them.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import pylibsrtp
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import RtpPacket, is_rtcp

from .tap import TapReceiver

logger = logging.getLogger(__name__)

_OPENED = "_publisher_hls_express_lane"
# The kernel's default (about 200 KB) holds some 90 full-size datagrams, 0.4 s of a
# 720p30 stream: a process stalled longer (a busy machine, a garbage collection) lost
# packets in the socket, and frames with them. 4 MiB holds seconds.
RECEIVE_BUFFER = 4 << 20


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
    router, extensions = dtls._rtp_router, dtls._rtp_header_extensions_map
    failures = 0

    def receive(data: bytes) -> None:
        nonlocal failures
        try:
            packet = RtpPacket.parse(srtp.unprotect(data), extensions)
        except (pylibsrtp.Error, ValueError):
            return  # what aiortc does too: a packet that does not decrypt or parse is gone
        receiver = router.route_rtp(packet)
        if isinstance(receiver, TapReceiver):  # every receiver the room client makes
            try:
                receiver.receive_rtp(packet)
            except Exception:  # never into the socket's callback
                failures += 1
                if failures in (1, 100):
                    logger.exception("a tap failed on an RTP packet")

    for pair in pairs:
        _wrap(pair.protocol, receive)
        transport = getattr(pair.protocol, "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            enlarge_receive_buffer(sock)
    setattr(dtls, _OPENED, True)
    return True


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


def _wrap(protocol: Any, receive: Any) -> None:
    slow = protocol.datagram_received

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
        if 127 < data[0] < 192 and not is_rtcp(data):
            receive(data)
        else:
            slow(data, addr)

    protocol.datagram_received = datagram_received
