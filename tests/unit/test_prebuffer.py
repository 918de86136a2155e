"""What is held before a recording begins starts on a keyframe it can begin on."""

from __future__ import annotations

import pytest

from publisher_hls_agent.media.units import AccessUnit
from publisher_hls_agent.recorder.prebuffer import PreBuffer

pytestmark = pytest.mark.unit


def unit(index: int, *, keyframe: bool = False, parameter_sets: bool = False) -> AccessUnit:
    return AccessUnit(data=bytes([index]), rtp_timestamp=index * 3000, arrival=index / 30,
                      keyframe=keyframe, has_parameter_sets=parameter_sets, after_loss=False)


def test_an_idr_without_its_parameter_sets_does_not_replace_the_buffered_keyframe() -> None:
    """Its SPS/PPS packet lost before any came: no player decodes a segment begun on it
    (a Chromium recording's segment 0 once began so)."""
    buffer = PreBuffer()
    buffer.add_video(unit(0))  # before any keyframe: nothing to begin on
    assert buffer.keyframe is None and not buffer.video
    buffer.add_video(unit(1, keyframe=True, parameter_sets=True))
    buffer.add_video(unit(2))
    buffer.add_video(unit(3, keyframe=True))  # an IDR alone
    buffer.add_video(unit(4))
    assert buffer.keyframe is not None and buffer.keyframe.rtp_timestamp == 3000
    assert [u.rtp_timestamp // 3000 for u in buffer.video] == [1, 2, 3, 4]
    buffer.add_video(unit(5, keyframe=True, parameter_sets=True))
    assert [u.rtp_timestamp // 3000 for u in buffer.video] == [5]


def test_nothing_begins_on_a_lone_idr() -> None:
    buffer = PreBuffer()
    buffer.add_video(unit(0, keyframe=True))
    buffer.add_video(unit(1))
    assert buffer.keyframe is None and not buffer.video
