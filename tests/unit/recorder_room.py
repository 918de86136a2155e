"""A publisher's media played into a ``Recorder`` on a fake clock (the start tests and
the closing tests share it)."""

from __future__ import annotations

from pathlib import Path

from publisher_hls_agent.media.track import RemoteTrack
from publisher_hls_agent.recorder.options import RecorderOptions
from publisher_hls_agent.recorder.recorder import Recorder

from .fake_time import FakeTime


def opus_packets_of(count: int, tone: float = 0.0) -> list[bytes]:
    """``count`` packets of 20 ms, mono, encoded by libopus: a sine of ``tone`` Hz, or
    silence."""
    import fractions

    import av
    import numpy as np
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "mono", "s16"
    encoder.time_base = fractions.Fraction(1, 48000)
    encoder.options = {"frame_duration": "20"}
    encoder.open()
    packets = []
    for index in range(count):
        t = np.arange(index * 960, (index + 1) * 960) / 48000
        samples = (np.sin(2 * np.pi * tone * t) * 8000).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, index * 960
        packets += [bytes(packet) for packet in encoder.encode(frame)]
    return packets


VIDEO = RemoteTrack("TR_v", "video", "video/H264", recorded_codec="h264")
AUDIO = RemoteTrack("TR_a", "audio", "audio/opus")


class Room:
    """A publisher's media into a recorder on a fake clock: 30 fps video with a keyframe
    every second, 20 ms Opus packets, each given at its arrival time (timers fire in
    between, as they would), and sender reports that can come late."""

    def __init__(self, tmp_path: Path, **options: object) -> None:
        from publisher_hls_agent.media.rtp import SenderReport
        self.time = FakeTime()
        self.t0 = self.time.now
        self.reports_from = float("inf")  # seconds after t0 when reports exist
        # How much later than its arrival says the audio's reports put it (seconds)
        self.audio_report_skew = 0.0
        self.keyframe_requests = 0
        self.ended: list[str] = []

        def report(sid: str) -> SenderReport | None:
            if self.time.now - self.t0 < self.reports_from:
                return None
            if sid.startswith("TR_v"):
                return SenderReport(3_900_000_000.0, 90_000, self.time.now)  # its first, at t0
            return SenderReport(3_900_000_000.0 + self.audio_report_skew, 4_800, self.time.now)

        self.recorder = Recorder(
            "room", "alice", RecorderOptions(output_dir=tmp_path, segment_duration=1.0,
                                             **options),  # type: ignore[arg-type]
            request_keyframe=self._asked, sender_report=report,
            end_recording=self.ended.append, clock=self.time.clock, schedule=self.time.schedule)

    def _asked(self) -> None:
        self.keyframe_requests += 1

    def play(self, seconds: float, opus: list[bytes], *, start: float = 0.0,
             video: bool = True, audio: bool = True, keyframes_from: float = 0.0,
             late: frozenset[int] = frozenset()) -> None:
        """``late``: frames completed by a retransmission 200 ms late, after the next
        frames were whole: handed on in order, but with an arrival after theirs."""
        from publisher_hls_agent.media import h264
        from publisher_hls_agent.media.units import AccessUnit, AudioPacket

        from .h264_samples import IDR, PPS, SLICE, SPS
        events: list[tuple[float, int]] = []
        if video:
            events += [(start + i / 30, i) for i in range(round(seconds * 30))]
        if audio:
            events += [(start + i / 50, -1 - i) for i in range(round(seconds * 50))]
        for at, index in sorted(events):
            self.time.advance(self.t0 + at - self.time.now)
            if index >= 0:
                frame = round(at * 30)
                keyframe = frame % 30 == 0 and at >= keyframes_from
                data = h264.to_annexb([SPS, PPS, IDR] if keyframe else [SLICE])
                arrival = self.time.now + (0.2 if frame in late else 0.0)
                self.recorder.on_video("TR_v", AccessUnit(
                    data, 90_000 + 3000 * frame, arrival, keyframe, keyframe, False))
            else:
                packet = round(at * 50)
                self.recorder.on_audio("TR_a", AudioPacket(
                    opus[packet % len(opus)], 4_800 + 960 * packet, self.time.now))
