"""One timeline for audio and video: RTP timestamps in, presentation times out. Pure.

Each track's RTP clock starts at a random value and runs at its own rate. RTCP sender
reports tie each of them to the publisher's wall clock (NTP), which is what lines audio
up with video; without them, arrival times stand in. The recording's t=0 is its first
keyframe. Each track's mapping is fixed once (``pts = rtp + offset``), so timestamps
advance exactly with the RTP clock and never jitter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


@dataclass(frozen=True)
class TrackStart:
    """What a track brings to the start of a recording."""

    first: tuple[int, float]  # (rtp, arrival) of its first recorded unit
    arrivals: Sequence[tuple[int, float]]  # recent (rtp, arrival) samples
    report: SenderReport | None  # its latest sender report, if one came


@dataclass(frozen=True)
class StartAlignment:
    """Audio and video on one timeline whose t=0 is the first keyframe (the first audio
    when the recording begins without video)."""

    origin: float  # t=0 on the shared clock: NTP seconds by reports, else arrival
    by_reports: bool
    audio_clock: TrackClock | None

    @property
    def aligned_by(self) -> str:
        return "sender reports" if self.by_reports else "arrival times"


def align_start(video: TrackStart | None, audio: TrackStart | None) -> StartAlignment:
    """Sender reports place both tracks when every track has one; otherwise arrival
    times do, each track anchored on its least-delayed packet. t=0 is the video's
    first unit, or the audio's when the recording begins without video."""
    lead, lead_rate = (video, VIDEO_RATE) if video is not None else (audio, AUDIO_RATE)
    assert lead is not None, "a recording begins on some track"
    by_reports = all(t.report is not None for t in (video, audio) if t is not None)

    def clock(track: TrackStart, rate: int) -> TrackClock:
        if by_reports:
            assert track.report is not None
            return clock_from_report(track.report, track.first[0], rate)
        return clock_from_arrivals([track.first, *track.arrivals], rate)

    origin = clock(lead, lead_rate).seconds_at(lead.first[0])
    return StartAlignment(origin, by_reports,
                          clock(audio, AUDIO_RATE) if audio is not None else None)
