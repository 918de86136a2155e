"""Sequence-number and timestamp arithmetic for RTP, with wraparound.

RTP carries 16-bit sequence numbers and 32-bit timestamps that start at random values
and wrap. Everything downstream wants monotonic 64-bit values, so they are unwrapped
here, once, by choosing the 64-bit value nearest to the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass


class Unwrapper:
    """Extends an N-bit wrapping counter to a 64-bit one (RFC 3550 §A.1 style).

    Each value is placed in the cycle that puts it nearest to the last value seen, so
    reordered packets from just before a wrap land before it, not 2^N later.
    """

    __slots__ = ("_half", "_last", "_modulus")

    def __init__(self, bits: int) -> None:
        self._modulus = 1 << bits
        self._half = 1 << (bits - 1)
        self._last: int | None = None

    def unwrap(self, value: int) -> int:
        last = self._last
        if last is None:
            extended = value  # a value reordered before the first one may come out negative
        else:
            delta = (value - last) % self._modulus
            if delta >= self._half:
                delta -= self._modulus
            extended = last + delta
        if last is None or extended > last:
            self._last = extended
        return extended

    @property
    def last(self) -> int | None:
        """The highest extended value seen so far."""
        return self._last


def sequence_unwrapper() -> Unwrapper:
    return Unwrapper(16)


def timestamp_unwrapper() -> Unwrapper:
    return Unwrapper(32)


@dataclass(frozen=True, slots=True)
class SenderReport:
    """One RTCP sender report: the sender's wall clock (NTP) at an RTP timestamp.

    ``ntp_seconds`` is seconds since 1900-01-01; ``received_at`` is the local monotonic
    clock when it arrived. Together they let audio and video be placed on one timeline.
    """

    ntp_seconds: float
    rtp_timestamp: int
    received_at: float

    @staticmethod
    def from_ntp64(ntp_timestamp: int, rtp_timestamp: int, received_at: float) -> SenderReport:
        return SenderReport(
            ntp_seconds=(ntp_timestamp >> 32) + (ntp_timestamp & 0xFFFFFFFF) / 2**32,
            rtp_timestamp=rtp_timestamp,
            received_at=received_at,
        )
