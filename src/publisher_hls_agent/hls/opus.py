"""Opus kept as it came, laid on a gapless 48 kHz timeline. Pure.

WebRTC Opus stops sending during silence (DTX) and loses packets; fMP4 wants samples
back to back, so holes are filled with Opus silence packets of 20 ms (and a shorter
packet for what is left). Packet durations come from the TOC byte (RFC 6716 §3.1).
"""

from __future__ import annotations

from .audio import AudioFrame

# Frame sizes in 48 kHz samples for the 32 TOC configurations (RFC 6716 §3.1).
_FRAME_SAMPLES = [480, 960, 1920, 2880] * 3 + [480, 960] * 2 + [120, 240, 480, 960] * 4
# Silence: a CELT-only fullband frame with a zero-length body, mono (0xF8) or stereo
# (0xFC). 0xF8 is config 31 = 20 ms; the 2.5 ms config 28 fills what is left.
_SILENCE_20MS = {1: b"\xf8\xff\xfe", 2: b"\xfc\xff\xfe"}
_SILENCE_2_5MS = {1: b"\xe0\xff\xfe", 2: b"\xe4\xff\xfe"}


# libopus codes digital silence, and what DTX sends while the source is silent, in at
# most 3 bytes: a TOC and an empty frame (measured with the official SDK, idle and
# capturing zeros: 1- and 3-byte packets, about five a second). Speech, music and even a
# quiet room's noise take tens of bytes.
SILENT_PACKET_BYTES = 3


def is_silence(packet: bytes) -> bool:
    return len(packet) <= SILENT_PACKET_BYTES


def packet_samples(packet: bytes) -> int:
    """Samples (48 kHz) an Opus packet decodes to; 0 if it is malformed."""
    if not packet:
        return 0
    toc = packet[0]
    frame = _FRAME_SAMPLES[toc >> 3]
    code = toc & 0x03
    if code == 0:
        return frame
    if code in (1, 2):
        return 2 * frame
    if len(packet) < 2:
        return 0
    return (packet[1] & 0x3F) * frame


class OpusTimeline:
    def __init__(self, channels: int) -> None:
        self.channels = 2 if channels == 2 else 1
        self._next: int | None = None
        self.silence_inserted = 0
        self.packets_dropped = 0

    def push(self, packet: bytes, pts: int) -> list[AudioFrame]:
        samples = packet_samples(packet)
        if samples == 0 or (self._next is not None and pts < self._next):
            self.packets_dropped += 1
            return []
        out = self._fill(pts) if self._next is not None and pts > self._next else []
        out.append(AudioFrame(packet, pts, samples))
        self._next = pts + samples
        return out

    def _fill(self, until: int) -> list[AudioFrame]:
        assert self._next is not None
        out = []
        while until - self._next >= 960:
            out.append(AudioFrame(_SILENCE_20MS[self.channels], self._next, 960))
            self._next += 960
        while until - self._next >= 120:
            out.append(AudioFrame(_SILENCE_2_5MS[self.channels], self._next, 120))
            self._next += 120
        self.silence_inserted += sum(frame.duration for frame in out)
        return out

    def fill_to(self, until: int, most: int) -> list[AudioFrame]:
        """Silence from the end of the last packet to ``until`` (samples), if that is
        at most ``most`` samples."""
        if self._next is None or not 0 < until - self._next <= most:
            return []
        return self._fill(until)

    def flush(self) -> list[AudioFrame]:
        return []  # nothing is held back: packets pass as they come
