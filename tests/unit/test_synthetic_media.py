"""The synthetic media the tests measure against: it must be what it claims."""

import av
import numpy as np
import pytest

from publisher_hls_agent.media import h264
from publisher_hls_agent.testbed.synthetic_media import (
    WHITE,
    SyntheticAudio,
    SyntheticVideo,
    access_unit_digest,
)

pytestmark = pytest.mark.unit


def nal_types(data: bytes) -> list[int]:
    return [h264.nal_type(n) for n in h264.split_annexb(data)]


def test_one_access_unit_per_frame_with_keyframes_at_the_interval() -> None:
    video = SyntheticVideo(320, 240, fps=10, keyframe_interval_s=1.0, flash_period_s=1.0)
    units = [video.next_access_unit() for _ in range(25)]
    assert [u.index for u in units] == list(range(25))
    assert [u.index for u in units if u.keyframe] == [0, 10, 20]
    for unit in units:
        types = nal_types(unit.data)
        if unit.keyframe:
            assert {7, 8, 5} <= set(types) and types.index(7) < types.index(5)
        else:
            assert set(types) <= {1, 6}
    assert units[3].timestamp_us == 300_000


def test_a_requested_keyframe_comes_on_the_next_frame() -> None:
    video = SyntheticVideo(320, 240, fps=10, keyframe_interval_s=100.0)
    video.next_access_unit()
    assert not video.next_access_unit().keyframe
    video.request_keyframe()
    forced = video.next_access_unit()
    assert forced.keyframe and {7, 8, 5} <= set(nal_types(forced.data))


def test_flash_frames_are_white_and_others_are_not() -> None:
    video = SyntheticVideo(320, 240, fps=10, flash_period_s=0.5)
    decoder = av.CodecContext.create("h264", "r")
    means = []
    for _ in range(11):
        unit = video.next_access_unit()
        for frame in decoder.decode(av.Packet(unit.data)):
            means.append(frame.to_ndarray(format="gray").mean())
    assert [i for i, m in enumerate(means) if m > WHITE - 10] == [0, 5, 10]
    assert video.flash_frame(5) and not video.flash_frame(4)


def test_beeps_start_on_the_flash_sample() -> None:
    audio = SyntheticAudio(beep_period_s=0.5, beep_ms=100)
    pcm = np.concatenate([audio.next_frame(480) for _ in range(200)]).astype(np.float64)
    loud = np.abs(pcm) > 0.25 * 32767
    onsets = [i for i in range(1, len(loud)) if loud[i] and not loud[i - 20:i].any()]
    starts = [audio.beep_start_sample(k) for k in range(1, 4)]
    # The first loud sample of a 1 kHz sine comes within a quarter period of the start.
    assert all(any(0 <= o - s < 12 for o in onsets) for s in starts)
    quiet = pcm[audio.beep_length + 100:audio.beep_period - 100]
    assert np.abs(quiet).max() < 0.05 * 32767


def test_digest_ignores_start_code_length() -> None:
    nal = b"\x65\x88\x84"
    three, four = b"\x00\x00\x01" + nal, b"\x00\x00\x00\x01" + nal
    assert access_unit_digest(three) == access_unit_digest(four)
