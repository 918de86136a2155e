"""The pacing of keyframe requests to LiveKit's SFU (media/pli.py)."""

from __future__ import annotations

import pytest

from publisher_hls_agent.media.pli import (
    RETRY,
    THROTTLE_SIMULCAST,
    THROTTLE_SINGLE_STREAM,
    PliPacing,
)

pytestmark = pytest.mark.unit


def test_the_first_pli_goes_at_once() -> None:
    assert PliPacing().may_send(0.0)


@pytest.mark.parametrize(("simulcast", "throttle"),
                         [(True, THROTTLE_SIMULCAST), (False, THROTTLE_SINGLE_STREAM)])
def test_an_answered_pli_is_followed_by_another_only_past_the_sfus_throttle(
        simulcast: bool, throttle: float) -> None:
    pacing = PliPacing(simulcast=simulcast)
    pacing.sent(10.0)
    pacing.keyframe_arrived()
    assert not pacing.awaiting
    assert not pacing.may_send(10.0 + RETRY)
    assert not pacing.may_send(10.0 + throttle - 0.01)
    assert pacing.may_send(10.0 + throttle + 1e-9)


def test_a_pli_that_brought_no_keyframe_is_repeated_after_the_retry_time() -> None:
    pacing = PliPacing()
    pacing.sent(10.0)
    assert pacing.awaiting
    assert not pacing.may_send(10.0 + RETRY - 0.01)  # its keyframe may be on its way
    assert pacing.may_send(10.0 + RETRY + 1e-9)
    pacing.sent(10.0 + RETRY)
    assert not pacing.may_send(10.0 + 1.5 * RETRY)  # and each repeat waits as long
    assert pacing.may_send(10.0 + 2 * RETRY + 1e-9)


def test_a_single_stream_is_throttled_less_than_a_simulcast_layer() -> None:
    assert RETRY < THROTTLE_SINGLE_STREAM < THROTTLE_SIMULCAST
