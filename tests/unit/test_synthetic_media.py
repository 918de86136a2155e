"""The synthetic media the tests measure against: it must be what it claims."""

from __future__ import annotations

import av
import numpy as np
import pytest
from testbed.synthetic_media import (
    BEEP_AMPLITUDE,
    TONE_AMPLITUDE,
    WHITE,
    SyntheticAudio,
    SyntheticVideo,
    access_unit_digest,
)

from publisher_hls_agent.media import h264

pytestmark = pytest.mark.unit

START_CODE_3 = b"\x00\x00\x01"


def nal_types(data: bytes) -> list[int]:
    return [h264.nal_type(nal) for nal in h264.split_annexb(data)]


def decode_all(units: list[bytes]) -> list[av.VideoFrame]:
    """Feed access units one by one; a frame that comes out is the one just fed."""
    decoder = av.CodecContext.create("h264", "r")
    frames = []
    for data in units:
        decoded = decoder.decode(av.Packet(data))
        assert len(decoded) == 1  # no reordering: one picture per access unit
        frames.extend(decoded)
    return frames


def test_one_annexb_access_unit_per_frame_with_keyframes_at_the_interval() -> None:
    video = SyntheticVideo(320, 240, fps=10, keyframe_interval_s=1.0, flash_period_s=0.7)
    units = [video.next_access_unit() for _ in range(25)]
    assert [u.index for u in units] == list(range(25))
    assert [u.timestamp_us for u in units[:4]] == [0, 100_000, 200_000, 300_000]
    assert [u.index for u in units if u.keyframe] == [0, 10, 20]
    for unit in units:
        assert unit.data.startswith(START_CODE_3) or unit.data.startswith(b"\x00" + START_CODE_3)
        types = nal_types(unit.data)
        if unit.keyframe:
            # SPS and PPS in front of the IDR slices, in every keyframe.
            assert types.index(7) < types.index(8) < types.index(5), types
        else:
            assert set(types) <= {1, 6}, types  # non-IDR slices (and SEI), nothing else
    # The stream decodes, one picture per access unit (no B-frames, no delay).
    assert len(decode_all([u.data for u in units])) == 25


def test_a_requested_keyframe_is_an_idr_on_the_next_frame() -> None:
    video = SyntheticVideo(320, 240, fps=10, keyframe_interval_s=100.0, flash_period_s=100.0)
    units = [video.next_access_unit() for _ in range(3)]
    assert [u.keyframe for u in units] == [True, False, False]
    video.request_keyframe()
    forced = video.next_access_unit()
    after = video.next_access_unit()
    assert forced.keyframe and not after.keyframe
    types = nal_types(forced.data)
    assert {7, 8, 5} <= set(types) and types.index(7) < types.index(5)
    # An IDR resets the decoder: it decodes on its own, without the frames before it.
    assert len(decode_all([forced.data, after.data])) == 2


def test_skipped_frames_keep_the_frame_number_on_the_clock() -> None:
    video = SyntheticVideo(320, 240, fps=10, keyframe_interval_s=100.0)
    video.next_access_unit()
    video.skip(5)
    unit = video.next_access_unit()
    assert (unit.index, unit.timestamp_us, unit.keyframe) == (6, 600_000, False)
    assert video.next_index == 7


def test_flash_frames_are_white_and_no_others_are() -> None:
    video = SyntheticVideo(320, 240, fps=10, flash_period_s=0.5)
    frames = decode_all([video.next_access_unit().data for _ in range(16)])
    means = [frame.to_ndarray(format="gray").mean() for frame in frames]
    assert [i for i, mean in enumerate(means) if mean > WHITE - 10] == [0, 5, 10, 15]
    assert max(means[1:5]) < 160  # the background and digits, far from white
    assert [video.flash_frame(i) for i in range(6)] == [True] + [False] * 4 + [True]


def test_the_frame_counter_is_drawn_over_the_moving_background() -> None:
    video = SyntheticVideo(320, 240, fps=10, flash_period_s=100.0)
    assert video.picture(1).shape == (360, 320)  # yuv420p: h * 3/2 rows
    # Frames 1 and 33 have the same background offset (the texture scrolls by a whole
    # period every 32 frames) but other digits; frame 2 has the background moved.
    first, same_place = video.picture(1)[:240].copy(), video.picture(33)[:240].copy()
    moved = video.picture(2)[:240].copy()
    band = slice(240 // 2 - 30, 240 // 2 + 30)  # the counter, centred vertically
    assert np.array_equal(first[:80], same_place[:80])
    assert not np.array_equal(first[band], same_place[band])
    assert not np.array_equal(first[:80], moved[:80])
    assert video.picture(1)[:240].tobytes() == first.tobytes()  # deterministic


def test_beeps_start_on_their_sample_and_are_loud() -> None:
    audio = SyntheticAudio(beep_period_s=0.5, beep_ms=100)
    pcm = np.concatenate([audio.next_frame(480) for _ in range(160)]).astype(np.float64)
    assert len(pcm) == audio.position == 160 * 480
    loud = np.abs(pcm) > 0.25 * 32767
    starts = [audio.beep_start_sample(k) for k in range(4)]
    assert starts == [0, 24_000, 48_000, 72_000]
    for start in starts[1:]:
        # Sample-accurate: quiet on the sample before, at full beep level on the first.
        assert not loud[start - 480 : start].any()
        assert pcm[start] == round(BEEP_AMPLITUDE * 32767)
        assert loud[start : start + audio.beep_length].mean() > 0.5
        assert not loud[start + audio.beep_length : start + audio.beep_length + 480].any()
    quiet = pcm[audio.beep_length + 1 : audio.beep_period]
    assert np.abs(quiet).max() <= round(TONE_AMPLITUDE * 32767)
    assert np.abs(quiet).max() > 0.8 * TONE_AMPLITUDE * 32767  # a tone, not silence


def test_beeps_line_up_with_flashes() -> None:
    video = SyntheticVideo(320, 240, fps=30, flash_period_s=2.0)
    audio = SyntheticAudio(48_000, beep_period_s=2.0)
    for k in range(4):
        flash = k * 60
        assert video.flash_frame(flash)
        assert audio.beep_start_sample(k) == flash * 48_000 // 30


def test_audio_is_continuous_across_frames_and_interleaved() -> None:
    one = SyntheticAudio(beep_period_s=1.0)
    whole = one.next_frame(4800)
    pieces = SyntheticAudio(beep_period_s=1.0)
    assert np.array_equal(whole, np.concatenate([pieces.next_frame(480) for _ in range(10)]))
    stereo = SyntheticAudio(channels=2, beep_period_s=1.0).next_frame(480)
    assert stereo.dtype == np.int16 and stereo.shape == (960,)
    assert np.array_equal(stereo[0::2], stereo[1::2])
    assert np.array_equal(stereo[0::2], whole[:480])


def test_digest_ignores_start_code_length() -> None:
    nal = b"\x65\x88\x84"
    three, four = START_CODE_3 + nal, b"\x00" + START_CODE_3 + nal
    assert access_unit_digest(three) == access_unit_digest(four)
