"""Reassembly of video frames from RTP packets, tolerant of reordering and loss.

Packets are kept by unwrapped sequence number. A frame is complete when every packet
from the one after the previous frame up to its marker packet is there. A gap waits
``max_wait`` seconds for a retransmission: the reorder window, as long as the NACK
schedule asks for the packet (``nack.py``) and a little more for the answer to arrive.
After that the broken frame is given up and reading resumes at the next packet that
provably starts a frame, and that frame is flagged ``after_loss`` so the caller can
ask for a keyframe. A recorder can afford the wait: it delays segments, not frames.

A packet still missing after ``KEYFRAME_AFTER`` is likely lost for good (what the
SFU itself never received, it cannot resend), so ``keyframe_wanted`` asks the caller
for a keyframe then, while the wait goes on; and once a whole keyframe is buffered
beyond such a gap (``starts_keyframe``), nothing before it matters (those frames
could not be decoded without the lost one): reading jumps to it at once. (Not for a
younger gap: its retransmission usually comes, and the frames before the keyframe
with it.) A loss for good
then costs about ``KEYFRAME_AFTER`` and a keyframe's round trip, not the whole window.

Bounded whatever the sender does: a frame of more than ``MAX_FRAME_PACKETS`` (packets
that share a timestamp and never set the marker, say) is given up, the buffer never
holds more than ``max_packets``, and each packet is looked at a bounded number of
times (the scan of the frame in progress resumes where it stopped).

Two instants per packet: when it reached the machine (``arrival``) and when the receiver
read it (``seen``, later when the receiver was behind). A gap is known, and its packet
asked for, when the first packet after it is read; it has waited as long as the stream
has since gone on, in arrival time. Packets that were already waiting in the socket
when the gap was read cannot have brought its retransmission, so a receiver that reads
a second of backlog at once does not give up, in that second, packets that came in time.

Pure: arrival times are data, nothing here reads a clock or a socket.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .nack import NACK_INTERVAL, NACK_MAX_AGE
from .rtp import sequence_unwrapper, timestamp_unwrapper

# The last NACK goes out at NACK_MAX_AGE; its answer needs a round trip more.
REORDER_WINDOW = NACK_MAX_AGE + 2 * NACK_INTERVAL
# Nearly every retransmission comes within 0.2 s (measured against LiveKit at 5 % loss
# both ways, a minute: 1,539 packets recovered, median 44 ms, 99th percentile 152 ms,
# 3 after 0.2 s). A PLI for one that would have come costs a keyframe; each 0.1 s
# waited for one lost for good costs three frames.
KEYFRAME_AFTER = 0.2
MAX_FRAME_PACKETS = 2048  # 2.4 MB at 1,200 bytes: beyond any real picture


@dataclass(slots=True)
class AssembledFrame:
    rtp_timestamp: int  # 64-bit, unwrapped
    payloads: list[bytes]  # in sequence order
    arrival: float  # when its last packet arrived
    after_loss: bool  # something before this frame was lost: references may be missing


@dataclass(slots=True)
class _Packet:
    timestamp: int
    marker: bool
    payload: bytes
    arrival: float
    seen: float


class FrameAssembler:
    def __init__(
        self,
        starts_frame: Callable[[bytes], bool],
        max_wait: float = REORDER_WINDOW,
        max_packets: int = 4096,
        starts_keyframe: Callable[[bytes], bool] | None = None,
        keyframe_after: float = KEYFRAME_AFTER,
    ) -> None:
        self._starts_frame = starts_frame
        self._starts_keyframe = starts_keyframe
        self._keyframe_after = keyframe_after
        self._keyframe_starts: set[int] = set()  # buffered packets that begin a keyframe
        self._asked_for: int | None = None  # the gap a keyframe was wanted for
        self.keyframe_wanted = False  # set here, cleared by the caller once asked
        self._max_wait = max_wait
        self._max_packets = max_packets
        self._seq = sequence_unwrapper()
        self._ts = timestamp_unwrapper()
        self._buffer: dict[int, _Packet] = {}
        self._next: int | None = None  # None: resynchronising, waiting for a frame start
        self._scanned: int | None = None  # the frame at _next is whole up to here
        self._highest = -(1 << 62)
        self._after_loss = True  # nothing is known about what came before the first packet
        self.frames_dropped = 0
        self.packets_late = 0

    def push(
        self, sequence: int, timestamp: int, marker: bool, payload: bytes, arrival: float,
        seen: float | None = None,
    ) -> list[AssembledFrame]:
        """Take one packet (``seen``: when it was read, if later than ``arrival``); the
        frames it completes, in order."""
        seq = self._seq.unwrap(sequence)
        if self._next is None:
            if not self._starts_frame(payload):
                return []
            self._next = seq
        elif seq < self._next or seq in self._buffer:
            self.packets_late += 1
            return []
        self._buffer[seq] = _Packet(self._ts.unwrap(timestamp), marker, payload, arrival,
                                    arrival if seen is None else seen)
        if self._starts_keyframe is not None and self._starts_keyframe(payload):
            self._keyframe_starts.add(seq)
        if seq > self._highest:
            self._highest = seq
        return self._drain(arrival)

    def _drain(self, now: float) -> list[AssembledFrame]:
        frames: list[AssembledFrame] = []
        while self._buffer and self._next is not None:
            frame = self._take_complete_frame()
            if isinstance(frame, AssembledFrame):
                frames.append(frame)
                continue
            # ``frame`` is the first missing sequence number (None: the frame can never
            # be whole). Only a packet beyond it makes it a gap; otherwise the rest of
            # the frame is simply still on its way.
            if frame is None:
                self._give_up_broken_frame()
                continue
            if self._highest <= frame:
                break
            age = self._gap_age(frame, now)
            if age >= self._max_wait:
                self._give_up_broken_frame()
                continue
            if age < self._keyframe_after:
                break  # the retransmission is very likely on its way
            if (keyframe := self._whole_keyframe_beyond(frame)) is not None:
                self._give_up_until(keyframe)
                continue
            if self._asked_for != frame:
                self._asked_for = frame
                self.keyframe_wanted = True
            break
        return frames

    def _take_complete_frame(self) -> AssembledFrame | int | None:
        """Pop the frame starting at ``_next`` if all its packets are here, else
        return the first sequence number that is missing (None: too long a frame)."""
        assert self._next is not None
        buffer = self._buffer
        first = buffer.get(self._next)
        if first is None:
            return self._next
        seq = self._next if self._scanned is None else self._scanned
        packet = buffer[seq]
        while not packet.marker:
            following = buffer.get(seq + 1)
            if following is None:
                self._scanned = seq
                return seq + 1
            if following.timestamp != first.timestamp:
                break  # a new timestamp without a marker before it: the frame ended at seq
            seq += 1
            packet = following
            if seq - self._next >= MAX_FRAME_PACKETS:
                return None
        payloads = [buffer.pop(s).payload for s in range(self._next, seq + 1)]
        if self._keyframe_starts:
            self._keyframe_starts.difference_update(range(self._next, seq + 1))
        frame = AssembledFrame(first.timestamp, payloads, packet.arrival, self._after_loss)
        self._after_loss = False
        self._next = seq + 1
        self._scanned = None
        return frame

    def _gap_age(self, missing: int, now: float) -> float:
        """How long the packet ``missing`` has been waited for: from when the first
        packet after it was read, which is when it was known to be missing, to the
        arrival of the newest (``now``). (Not since the gap reached the head of the
        buffer: losses closer together than the window would then queue up behind each
        other, and reading fall ever further behind.)"""
        if len(self._buffer) > self._max_packets:
            return float("inf")
        seq = missing + 1
        while (after := self._buffer.get(seq)) is None:
            seq += 1  # ends: a packet beyond ``missing`` is buffered (see _drain)
            if seq - missing > MAX_FRAME_PACKETS:
                return float("inf")  # a jump that wide, no retransmission fills
        return now - after.seen

    def _whole_keyframe_beyond(self, missing: int) -> int | None:
        """The first sequence number of a keyframe after ``missing`` that is all here."""
        for start in sorted(s for s in self._keyframe_starts if s > missing):
            first = self._buffer[start]
            seq, packet, following = start, first, None
            while not packet.marker:
                following = self._buffer.get(seq + 1)
                if following is None or following.timestamp != first.timestamp:
                    break  # still on its way, or whole (a new timestamp ended it)
                seq, packet = seq + 1, following
            if packet.marker or following is not None:
                return start
        return None

    def _give_up_until(self, keyframe: int) -> None:
        """Drop everything before a whole keyframe: the lost packet no longer matters."""
        assert self._next is not None
        self.frames_dropped += 1
        self._after_loss = True
        self._scanned = None
        for seq in [s for s in self._buffer if s < keyframe]:
            del self._buffer[seq]
        self._keyframe_starts = {s for s in self._keyframe_starts if s >= keyframe}
        self._next = keyframe

    def _give_up_broken_frame(self) -> None:
        """Drop the frame with the gap and resume at the next provable frame start."""
        assert self._next is not None
        broken = self._buffer.get(self._next)
        broken_timestamp = broken.timestamp if broken is not None else None
        self.frames_dropped += 1
        self._after_loss = True
        self._scanned = None
        for seq in sorted(self._buffer):
            packet = self._buffer[seq]
            if seq > self._next and packet.timestamp != broken_timestamp and self._starts_frame(
                packet.payload
            ):
                self._next = seq
                return
            del self._buffer[seq]
            self._keyframe_starts.discard(seq)
        self._next = None  # nothing usable buffered: wait for the next frame start
