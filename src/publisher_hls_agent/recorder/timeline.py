"""One timeline for audio and video: RTP timestamps in, presentation times out. Pure.

Each track's RTP clock starts at a random value and runs at its own rate. RTCP sender
reports tie each of them to the publisher's wall clock (NTP), which is what lines audio
up with video; without them, arrival times stand in. The recording's t=0 is its first
keyframe. Each track's mapping is fixed once (``pts = rtp + offset``), so timestamps
advance exactly with the RTP clock and never jitter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..media.rtp import SenderReport

VIDEO_RATE = 90000
AUDIO_RATE = 48000


@dataclass(frozen=True)
class TrackClock:
    """Where one RTP timestamp of a track sits on a shared clock (seconds)."""

    rtp: int  # unwrapped
    seconds: float
    rate: int

    def seconds_at(self, rtp: int) -> float:
        return self.seconds + (rtp - self.rtp) / self.rate


def unwrap_near(value32: int, reference: int) -> int:
    """The 64-bit timestamp with these low 32 bits nearest to ``reference``."""
    candidate = (reference & ~0xFFFFFFFF) | value32
    if candidate - reference > 1 << 31:
        candidate -= 1 << 32
    elif reference - candidate > 1 << 31:
        candidate += 1 << 32
    return candidate


def clock_from_report(report: SenderReport, reference_rtp: int, rate: int) -> TrackClock:
    return TrackClock(unwrap_near(report.rtp_timestamp, reference_rtp), report.ntp_seconds, rate)


def clock_from_arrival(rtp: int, arrival: float, rate: int) -> TrackClock:
    return TrackClock(rtp, arrival, rate)


def clock_from_arrivals(samples: Iterable[tuple[int, float]], rate: int) -> TrackClock:
    """The arrival clock of a track from many ``(rtp, arrival)`` samples.

    Each packet's arrival is its send time plus a delay that varies (bursts after a
    connect, retransmissions, pacing); the one with the least delay is the best anchor,
    and since audio and video travel the same path, anchoring both that way aligns them.
    """
    rtp, arrival = min(samples, key=lambda sample: sample[1] - sample[0] / rate)
    return TrackClock(rtp, arrival, rate)


@dataclass(frozen=True)
class TrackTimeline:
    """``pts = rtp + offset``, in the track's own clock rate."""

    offset: int

    def pts(self, rtp: int) -> int:
        return rtp + self.offset


def track_timeline(clock: TrackClock, origin_seconds: float) -> TrackTimeline:
    """Place a track on the recording timeline whose t=0 is ``origin_seconds``."""
    start = round((clock.seconds - origin_seconds) * clock.rate)
    return TrackTimeline(start - clock.rtp)
