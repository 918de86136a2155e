"""The units of media the room client hands to its consumer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One H.264 picture exactly as the publisher encoded it, in Annex B."""

    data: bytes
    rtp_timestamp: int  # 90 kHz, unwrapped to 64 bits
    arrival: float  # local monotonic seconds when its last packet arrived
    keyframe: bool  # holds an IDR slice
    has_parameter_sets: bool  # holds both SPS and PPS
    after_loss: bool  # packets before it were lost: it may reference missing pictures


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """One Opus packet (RFC 7587): 48 kHz RTP clock."""

    data: bytes
    rtp_timestamp: int  # 48 kHz, unwrapped to 64 bits
    arrival: float
