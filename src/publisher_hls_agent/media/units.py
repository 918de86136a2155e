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

    @property
    def starts_stream(self) -> bool:
        """A keyframe a recording can begin on: one with its parameter sets (an IDR
        whose SPS/PPS packet was lost, before any came to be added to it, decodes in no
        player)."""
        return self.keyframe and self.has_parameter_sets


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """One Opus packet (RFC 7587): 48 kHz RTP clock."""

    data: bytes
    rtp_timestamp: int  # 48 kHz, unwrapped to 64 bits
    arrival: float
