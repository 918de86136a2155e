"""Opus to AAC-LC (PyAV), on the recording's audio timeline, with no gaps.

Opus from WebRTC skips packets during silence (DTX) and loses some; AAC in HLS should
be continuous or players stall at the holes. So the decoded audio is laid on a sample
timeline taken from the RTP timestamps, and holes are filled with silence before
encoding. Times are 48 kHz sample counts from the recording's t=0.
"""

from __future__ import annotations

import fractions

import av
import numpy as np

from .audio import AudioFrame

SAMPLE_RATE = 48000
AAC_FRAME = 1024
OPUS_MAX_FRAME = 5760  # 120 ms
_SAMPLING_INDEX_48K = 3


def adts_header(payload_length: int, channels: int) -> bytes:
    length = payload_length + 7
    return bytes((
        0xFF, 0xF1,  # sync, MPEG-4, layer 0, no CRC
        (1 << 6) | (_SAMPLING_INDEX_48K << 2) | (channels >> 2),  # AAC LC (object type 2)
        ((channels & 3) << 6) | (length >> 11),
        (length >> 3) & 0xFF,
        ((length & 7) << 5) | 0x1F,
        0xFC,
    ))


class OpusToAac:
    def __init__(self, channels: int = 1, bitrate: int = 64_000) -> None:
        self.channels = channels
        layout = "stereo" if channels == 2 else "mono"
        self._decoder = av.CodecContext.create("opus", "r")
        self._decoder.sample_rate = SAMPLE_RATE
        self._decoder.layout = layout
        self._encoder = av.CodecContext.create("aac", "w")
        self._encoder.sample_rate = SAMPLE_RATE
        self._encoder.layout = layout
        self._encoder.format = "fltp"
        self._encoder.bit_rate = bitrate * channels
        self._encoder.time_base = fractions.Fraction(1, SAMPLE_RATE)
        # FFmpeg's default "twoloop" coder spends twice the CPU for a quality difference
        # speech and call audio at 64 kbit/s do not show.
        self._encoder.options = {"aac_coder": "fast"}
        self._encoder.open()
        self._next: int | None = None  # where the next decoded sample belongs
        self.silence_inserted = 0  # samples
        self.packets_dropped = 0

    def push(self, opus: bytes, pts: int) -> list[AudioFrame]:
        """Decode one Opus packet that starts at sample ``pts``; return finished frames."""
        if self._next is not None and pts < self._next:
            self.packets_dropped += 1  # a duplicate or a packet from before the start
            return []
        out: list[AudioFrame] = []
        if self._next is not None and pts > self._next:
            out += self._encode_silence(pts - self._next)
        try:
            frames = self._decoder.decode(av.Packet(opus))
        except av.FFmpegError:
            self.packets_dropped += 1
            return out
        position = pts
        for frame in frames:
            frame.pts = position
            frame.time_base = self._encoder.time_base
            position += frame.samples
            out += self._encode(frame)
        self._next = position
        return out

    def fill_to(self, until: int, most: int) -> list[AudioFrame]:
        """Silence from the end of the last packet to ``until`` (samples), if that is
        at most ``most`` samples; the frames the encoder finished meanwhile."""
        if self._next is None or not 0 < until - self._next <= most:
            return []
        return self._encode_silence(until - self._next)

    def flush(self) -> list[AudioFrame]:
        return self._encode(None)

    def _encode_silence(self, samples: int) -> list[AudioFrame]:
        assert self._next is not None
        self.silence_inserted += samples
        out: list[AudioFrame] = []
        while samples > 0:
            chunk = min(samples, OPUS_MAX_FRAME)
            frame = av.AudioFrame.from_ndarray(
                np.zeros((self.channels, chunk), dtype=np.float32), format="fltp",
                layout="stereo" if self.channels == 2 else "mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = self._next
            frame.time_base = self._encoder.time_base
            self._next += chunk
            samples -= chunk
            out += self._encode(frame)
        return out

    def _encode(self, frame: av.AudioFrame | None) -> list[AudioFrame]:
        out = []
        for packet in self._encoder.encode(frame):
            assert packet.pts is not None  # the encoder stamps every packet it makes
            # ADTS header + raw AAC frame: what MPEG-TS carries
            out.append(AudioFrame(adts_header(packet.size, self.channels) + bytes(packet),
                                  packet.pts, AAC_FRAME))
        return out
