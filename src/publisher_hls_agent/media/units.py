"""The units of media the room client hands to its consumer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One picture: H.264 in Annex B as the publisher encoded it (its last parameter
    sets put before an IDR that lacks them), or a VP9/AV1 frame as it came."""

    data: bytes
    rtp_timestamp: int  # 90 kHz, unwrapped to 64 bits
    arrival: float  # local monotonic seconds when its last packet arrived
    keyframe: bool  # holds an IDR slice
    has_parameter_sets: bool  # holds both SPS and PPS
    after_loss: bool  # packets before it were lost: it may reference missing pictures
    # What a keyframe decodes with (H.264: its SPS): a keyframe whose configuration
    # differs from the one before begins a new stream. Empty where the keyframe alone
    # says it all (VP9, AV1: their decoders take a new size at any keyframe).
    config: bytes = b""
    # Seconds between its arrival and its delivery beyond the usual: the time a picture
    # spent in a transcoder's backlog (room/transcoding.py). Media clocks go by
    # ``arrival``; only the wait for a stream still sending goes by arrival + delay.
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """One Opus packet (RFC 7587): 48 kHz RTP clock."""

    data: bytes
    rtp_timestamp: int  # 48 kHz, unwrapped to 64 bits
    arrival: float
