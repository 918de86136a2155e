"""What the video readers hand on around a frame they must drop, or one missing before
it reached the server."""

from __future__ import annotations

import pytest
from aiortc.rtp import RtpPacket

from publisher_hls_agent.media import h264
from publisher_hls_agent.media.frame_numbers import FrameNumbers
from publisher_hls_agent.media.track import RemoteTrack
from publisher_hls_agent.media.units import AccessUnit, AudioPacket
from publisher_hls_agent.room.tracks import H264Reader

from .encoded_video import encode
from .h264_samples import IDR, PPS, SLICE, SPS, packetize

pytestmark = pytest.mark.unit

BROKEN = bytes([0x18, 0x00, 0x40]) + b"abc"  # a STAP-A whose NAL unit is longer than it


class Consumer:
    def __init__(self) -> None:
        self.units: list[AccessUnit] = []

    def on_video(self, track_sid: str, unit: AccessUnit) -> None:
        self.units.append(unit)

    def on_video_pending(self, track_sid: str, pending: bool) -> None: ...
    def on_audio(self, track_sid: str, packet: AudioPacket) -> None: ...
    def on_track_started(self, track: RemoteTrack) -> None: ...
    def on_track_ended(self, track_sid: str) -> None: ...
    def on_track_unsupported(self, track: RemoteTrack, reason: str) -> None: ...


def test_the_frame_after_a_broken_one_comes_after_a_loss() -> None:
    """A frame that cannot be depacketized is dropped; the next ones may refer to it,
    so the next comes flagged (and the recorder waits for a keyframe, asked for here).
    Unflagged, a recording under 5 % loss once held 12 frames no decoder could show."""
    consumer, asked = Consumer(), []
    reader = H264Reader(RemoteTrack("TR_v", "video", "video/H264"), consumer,
                        lambda: asked.append(True))
    frames = [packetize([SPS, PPS, IDR]), packetize([SLICE]), [BROKEN], packetize([SLICE]),
              packetize([SLICE])]
    sequence = 0
    for index, payloads in enumerate(frames):
        for number, payload in enumerate(payloads):
            reader.on_rtp(RtpPacket(payload_type=96, sequence_number=sequence,
                                    timestamp=index * 3000, marker=number == len(payloads) - 1,
                                    payload=payload), index / 30)
            sequence += 1
    after_loss = {u.rtp_timestamp // 3000: u.after_loss for u in consumer.units}
    assert after_loss == {0: True, 1: False, 3: True, 4: False}  # (0: nothing known before)
    assert reader.stats.broken_frames == 1 and asked


X264 = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}


def test_a_reference_picture_the_publisher_never_sent_is_a_loss() -> None:
    """libx264's stream with frame 10 thrown away before packetizing (no RTP packet is
    missing): frame 11 comes after a loss, and so does nothing else."""
    units = encode("libx264", 40, keyframe_every=30, options=X264)
    numbers = FrameNumbers()
    sps = h264.parameter_sets(h264.split_annexb(units[0]))
    assert sps is not None
    gaps = [index for index, unit in enumerate(units)
            if index != 10 and numbers.gap_before(h264.split_annexb(unit), sps[0])]
    assert gaps == [11]
    complete = FrameNumbers()
    assert not any(complete.gap_before(h264.split_annexb(unit), sps[0]) for unit in units)
