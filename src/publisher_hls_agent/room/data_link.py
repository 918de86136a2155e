"""Data packets to and from the room, beside the media.

LiveKit delivers data (RPC requests among it) on the data channels it opens on the
subscriber connection; a participant sends data on a channel of its own publisher
connection. So answering an RPC needs that second peer connection, here carrying one
data channel and no media: offered by us, answered by the server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from livekit.protocol import rtc

from .ice import add_trickled_candidate
from .signal import SignalConnection

logger = logging.getLogger(__name__)

RELIABLE = "_reliable"  # the label LiveKit routes ordered, reliable data by
PUBLISHER_OFFER_ID = 1


class DataLink:
    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        self._on_data = on_data
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._channel = self._pc.createDataChannel(RELIABLE, ordered=True)
        self._pending: list[bytes] = []  # sent before the channel opened
        self._early_candidates: list[rtc.TrickleRequest] = []  # before the answer
        self._channel.on("open", self._flush)

    def receive_on(self, subscriber: RTCPeerConnection) -> None:
        """Take data from the channels the server opens on the subscriber connection."""
        @subscriber.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            @channel.on("message")
            def on_message(message: bytes | str) -> None:
                if isinstance(message, bytes):
                    self._on_data(message)

    async def open(self, signal: SignalConnection) -> None:
        """Offer the publisher connection (the answer comes as a signal response)."""
        await self._pc.setLocalDescription(await self._pc.createOffer())
        await signal.send(rtc.SignalRequest(offer=rtc.SessionDescription(
            type="offer", sdp=self._pc.localDescription.sdp, id=PUBLISHER_OFFER_ID)))

    async def answered(self, answer: rtc.SessionDescription) -> None:
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        early, self._early_candidates = self._early_candidates, []
        for trickle in early:
            await self.add_candidate(trickle)

    async def add_candidate(self, trickle: rtc.TrickleRequest) -> None:
        await add_trickled_candidate(self._pc, trickle, self._early_candidates)

    def send(self, packet: bytes) -> None:
        if self._channel.readyState == "open":
            self._channel.send(packet)
        elif self._channel.readyState == "connecting":
            self._pending.append(packet)

    async def close(self) -> None:
        await self._pc.close()

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for packet in pending:
            self._channel.send(packet)
