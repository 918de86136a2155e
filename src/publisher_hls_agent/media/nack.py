"""Which lost RTP packets to ask for again, and when (RFC 4585 generic NACK). Pure.

Timed for the server that answers: LiveKit's SFU (``pkg/sfu/sequencer.go``) ignores a
NACK that comes within min(100 ms, 2 x RTT) of the packet's last sending (the original
or a retransmission) and retransmits a packet at most three times. A receiver that asks
once, when it sees the gap, is mostly ignored; so, like libwebrtc's
``nack_requester.cc`` and pion's NACK generator, a missing packet is asked for again
every ``interval`` until it arrives or is too old to matter. A NACK the SFU ignores
costs a few bytes and not one of its three retransmissions, so asking a little more
often than its window only makes the honoured ones come sooner.

Sequence numbers here are unwrapped (64-bit, see ``rtp.Unwrapper``): lists stay in
order across the 16-bit wrap, and a NACK packet is built from them by ``nack_packet``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Between two NACKs for one packet. Under LiveKit's 100 ms window (its RTT guess before
# it has measured one) every second NACK is honoured; with a short measured RTT, each.
NACK_INTERVAL = 0.06
# A packet asked for longer than this is given up: the SFU has answered its three
# times by then, and the frame assembler stops waiting for it soon after.
NACK_MAX_AGE = 0.5
# The SFU keeps the last 500 video packets; a gap wider than that cannot be filled
# (and a jump of thousands is a broken or hostile stream, not loss).
MAX_GAP = 500
MAX_MISSING = 500
RTCP_RTPFB = 205
FMT_NACK = 1
MAX_NACK_ITEMS = 64  # (pid, blp) pairs in one packet: 264 bytes, up to 1,088 numbers


@dataclass(slots=True)
class NackStats:
    """What one track's reception saw; the tap counts into the reader's copy."""

    missing: int = 0  # sequence numbers found missing
    recovered: int = 0  # of those, arrived later (a retransmission or just late)
    abandoned: int = 0  # of those, given up without arriving
    requested: int = 0  # sequence numbers put in NACKs (each time)
    jumps: int = 0  # gaps too wide to ask for
    retransmissions: int = 0  # RTX packets received (RFC 4588)


class NackList:
    """The missing packets of one RTP stream and when each is next asked for."""

    __slots__ = ("_highest", "_interval", "_max_age", "_missing", "stats")

    def __init__(self, stats: NackStats | None = None, interval: float = NACK_INTERVAL,
                 max_age: float = NACK_MAX_AGE) -> None:
        self._interval = interval
        self._max_age = max_age
        self._highest: int | None = None
        # sequence number -> [found missing at, asked next at]
        self._missing: dict[int, list[float]] = {}
        self.stats = stats if stats is not None else NackStats()

    @property
    def missing(self) -> int:
        return len(self._missing)

    def received(self, seq: int, now: float) -> None:
        """Count an arriving packet (``seq`` unwrapped); a jump forward makes a gap."""
        highest = self._highest
        if highest is None or seq > highest:
            if highest is not None and seq > highest + 1:
                self._gap(highest + 1, seq, now)
            self._highest = seq
        elif self._missing.pop(seq, None) is not None:
            self.stats.recovered += 1

    def due(self, now: float) -> list[int]:
        """The sequence numbers to NACK now, in order; forgets those too old."""
        due: list[int] = []
        expired: list[int] = []
        for seq, entry in self._missing.items():
            if now - entry[0] > self._max_age:
                expired.append(seq)
            elif now >= entry[1]:
                due.append(seq)
                entry[1] = now + self._interval
        for seq in expired:
            del self._missing[seq]
        self.stats.abandoned += len(expired)
        self.stats.requested += len(due)
        due.sort()
        return due

    def oldest_missing_since(self) -> float | None:
        """When the packet missing longest was found missing (None: nothing is)."""
        # dicts keep insertion order, and gaps are found in order
        return next(iter(self._missing.values()))[0] if self._missing else None

    def next_due(self) -> float | None:
        """When ``due`` next has something to say (None: nothing is missing)."""
        if not self._missing:
            return None
        return min(min(entry[1], entry[0] + self._max_age) for entry in self._missing.values())

    def _gap(self, first: int, end: int, now: float) -> None:
        if end - first > MAX_GAP:
            self.stats.jumps += 1
            self.stats.abandoned += len(self._missing)
            self._missing.clear()
            return
        self.stats.missing += end - first
        for seq in range(first, end):
            self._missing[seq] = [now, now]
        overflow = len(self._missing) - MAX_MISSING
        if overflow > 0:  # oldest first: dicts keep insertion order, and gaps come in order
            for seq in list(self._missing)[:overflow]:
                del self._missing[seq]
            self.stats.abandoned += overflow


def nack_items(seqs: list[int]) -> list[tuple[int, int]]:
    """(PID, BLP) pairs for ascending unwrapped sequence numbers; PIDs are 16-bit."""
    items: list[tuple[int, int]] = []
    pid: int | None = None
    blp = 0
    for seq in seqs:
        if pid is not None and 0 < seq - pid <= 16:
            blp |= 1 << (seq - pid - 1)
            continue
        if pid is not None:
            items.append((pid & 0xFFFF, blp))
        pid, blp = seq, 0
    if pid is not None:
        items.append((pid & 0xFFFF, blp))
    return items


def nack_packets(sender_ssrc: int, media_ssrc: int, seqs: list[int]) -> list[bytes]:
    """RTCP generic NACK packets (RFC 4585 §6.2.1) asking for ``seqs`` (ascending,
    unwrapped), several when one would not fit a datagram comfortably."""
    items = nack_items(seqs)
    packets = []
    for start in range(0, len(items), MAX_NACK_ITEMS):
        chunk = items[start:start + MAX_NACK_ITEMS]
        body = struct.pack("!LL", sender_ssrc, media_ssrc) + b"".join(
            struct.pack("!HH", pid, blp) for pid, blp in chunk)
        header = struct.pack("!BBH", 0x80 | FMT_NACK, RTCP_RTPFB, len(body) // 4)
        packets.append(header + body)
    return packets
