"""The pacing of keyframe requests to LiveKit's SFU (media/pli.py)."""

from __future__ import annotations

import pytest

from publisher_hls_agent.media.pli import (
    MAX_RETRIES,
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


def test_an_unanswered_pli_is_due_again_a_few_times_and_none_after_its_keyframe() -> None:
    pacing = PliPacing()
    pacing.sent(10.0)
    assert not pacing.due(10.0 + RETRY - 0.01)
    now = 10.0
    for _ in range(MAX_RETRIES):
        now += RETRY
        assert pacing.due(now)
        pacing.sent(now)
    # Enough: each PLI stops the SFU's retransmissions, and a publisher that never
    # answers would have them stopped for good. Whoever wants one asks again.
    assert not pacing.due(now + 10 * RETRY)
    assert pacing.may_send(now + 10 * RETRY)
    pacing.sent(now + 10 * RETRY)
    assert not pacing.due(now + 11 * RETRY)
    pacing.keyframe_arrived()
    pacing.sent(now + 20 * RETRY)  # a new loss: its PLI is repeated anew
    assert pacing.due(now + 21 * RETRY)


def test_a_pli_asked_for_within_the_throttle_is_due_once_past_it() -> None:
    """The keyframe came, then turned out broken (a packet lost for good): the PLI for
    it goes as soon as the SFU would pass it, not when somebody next asks."""
    pacing = PliPacing(simulcast=False)
    pacing.sent(10.0)
    pacing.keyframe_arrived()
    assert not pacing.due(10.0 + pacing.throttle)  # nothing wanted
    assert not pacing.may_send(10.2)
    pacing.defer()
    assert not pacing.due(10.0 + pacing.throttle - 0.01)
    assert pacing.due(10.0 + pacing.throttle + 1e-9)
    pacing.sent(10.0 + pacing.throttle + 1e-9)
    assert not pacing.deferred and pacing.awaiting


def test_a_keyframe_ends_a_deferred_pli_and_an_awaited_one_is_not_deferred() -> None:
    pacing = PliPacing()
    pacing.sent(10.0)
    pacing.keyframe_arrived()
    pacing.defer()
    pacing.keyframe_arrived()  # another keyframe came on its own: nothing more is due
    assert not pacing.due(20.0)
    pacing.sent(20.0)
    pacing.defer()  # its keyframe is on its way: repeats are due, not a deferred one
    assert not pacing.deferred
