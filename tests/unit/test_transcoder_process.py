"""The transcoder in a process of its own: what it answers is what the in-process
``VideoTranscoder`` answers, and its process ending costs frames, never the caller."""

from __future__ import annotations

import os
import signal

import pytest

from publisher_hls_agent.media.transcode import DEFAULT_SETTINGS, TranscodeError, VideoTranscoder
from publisher_hls_agent.media.transcoder_process import TranscoderProcess

from .encoded_video import FRAME_TICKS, REALTIME_VPX, encode

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    return encode("libvpx", 40, 320, 240, keyframe_every=20, options=REALTIME_VPX)


def test_it_answers_what_the_transcoder_in_this_process_answers(frames: list[bytes]) -> None:
    here, there = VideoTranscoder("vp8", (320, 240)), TranscoderProcess("vp8", (320, 240),
                                                                         DEFAULT_SETTINGS)
    try:
        for index, frame in enumerate(frames):
            if index == 25:
                here.force_keyframe()
                there.force_keyframe()
            expected = here.transcode(frame, (1 << 33) + index * FRAME_TICKS)
            assert there.transcode(frame, (1 << 33) + index * FRAME_TICKS) == expected
    finally:
        there.close()
    assert [p.rtp_timestamp for p in expected] == [(1 << 33) + 39 * FRAME_TICKS]


def test_a_damaged_frame_is_an_error_and_the_next_frames_go_on(frames: list[bytes]) -> None:
    there = TranscoderProcess("vp8", None, DEFAULT_SETTINGS)
    try:
        assert there.transcode(frames[0], 0)[0].keyframe
        with pytest.raises(TranscodeError, match="not decodable"):
            there.transcode(b"\x00\x01\x02" + bytes(50), FRAME_TICKS)
        assert len(there.transcode(frames[1], 2 * FRAME_TICKS)) == 1
        assert there.restarts == 0
    finally:
        there.close()


def test_a_killed_process_costs_the_frames_until_the_next_keyframe(
        frames: list[bytes]) -> None:
    """FFmpeg crashing on a crafted frame, or the OOM killer: an error for that frame,
    a new process for the next, which decodes from the publisher's next keyframe."""
    there = TranscoderProcess("vp8", None, DEFAULT_SETTINGS)
    try:
        there.transcode(frames[0], 0)
        child = there._child
        assert child is not None
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        with pytest.raises(TranscodeError, match="transcoding process ended"):
            there.transcode(frames[1], FRAME_TICKS)
        with pytest.raises(TranscodeError, match="not decodable"):
            there.transcode(frames[2], 2 * FRAME_TICKS)  # its references are gone
        (picture,) = there.transcode(frames[20], 20 * FRAME_TICKS)  # the next keyframe
        assert picture.keyframe and picture.has_parameter_sets
        assert there.restarts == 1
    finally:
        there.close()


def test_closing_ends_the_process(frames: list[bytes]) -> None:
    there = TranscoderProcess("vp8", None, DEFAULT_SETTINGS)
    there.transcode(frames[0], 0)
    child = there._child
    assert child is not None
    there.close()
    assert child.returncode == 0
    there.close()  # twice is harmless
