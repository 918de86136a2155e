"""The start policy alone: every way a recording starts, in milliseconds, no clock read."""

from __future__ import annotations

import pytest

from publisher_hls_agent.recorder.start import (
    KEYFRAME_WAIT,
    REPORT_WAIT,
    TRACK_WAIT,
    VIDEO_WAIT,
    Do,
    StartPolicy,
)
from publisher_hls_agent.recorder.state import State

pytestmark = pytest.mark.unit

T0 = 500.0


def activated(**options: object) -> StartPolicy:
    """Manual activation, both tracks there, activated at T0."""
    policy = StartPolicy(**options)  # type: ignore[arg-type]
    policy.track_started("TR_v", "video", T0)
    policy.track_started("TR_a", "audio", T0)
    assert policy.activate(T0) == [Do.REQUEST_KEYFRAME]
    return policy


def test_a_fresh_keyframe_with_reports_starts_at_once() -> None:
    policy = activated()
    assert policy.video(keyframe=False, reports_ready=True) == []  # not a start point
    assert policy.video(keyframe=True, reports_ready=True) == [Do.HOLD, Do.START]
    assert policy.state is State.RECORDING and policy.deadline() is None


def test_with_no_fresh_keyframe_the_buffered_one_is_used_after_the_wait() -> None:
    policy = StartPolicy()
    policy.track_started("TR_v", "video", T0)
    policy.video(keyframe=True, reports_ready=True)  # before activation: buffered
    assert policy.state is State.HANDSHAKE_READY
    policy.activate(T0)
    assert policy.video(keyframe=False, reports_ready=True) == []
    assert policy.tick(T0 + KEYFRAME_WAIT - 0.001, buffered_keyframe=True,
                       reports_ready=True) == []
    assert policy.tick(T0 + KEYFRAME_WAIT, buffered_keyframe=True,
                       reports_ready=True) == [Do.HOLD_BUFFERED, Do.START]


def test_with_no_keyframe_at_all_it_asks_again_every_wait_until_one_comes() -> None:
    policy = activated()
    now = T0
    for _ in range(5):
        now += KEYFRAME_WAIT
        assert policy.deadline() == pytest.approx(now)
        assert policy.tick(now, buffered_keyframe=False,
                           reports_ready=True) == [Do.REQUEST_KEYFRAME]
    assert policy.video(keyframe=True, reports_ready=True) == [Do.HOLD, Do.START]


def test_late_reports_are_awaited_up_to_the_report_wait_then_arrival_times_do() -> None:
    policy = activated()
    assert policy.video(keyframe=True, reports_ready=False) == [Do.HOLD]
    assert policy.video(keyframe=False, reports_ready=False) == []
    assert policy.tick(T0 + KEYFRAME_WAIT, buffered_keyframe=True, reports_ready=False) == []
    assert policy.deadline() == pytest.approx(T0 + REPORT_WAIT)
    assert policy.tick(T0 + REPORT_WAIT, buffered_keyframe=True,
                       reports_ready=False) == [Do.START]


def test_reports_that_come_during_the_wait_start_it_with_the_next_unit() -> None:
    policy = activated()
    policy.video(keyframe=True, reports_ready=False)
    assert policy.video(keyframe=False, reports_ready=True) == [Do.START]


def test_a_participant_without_video_starts_on_its_first_audio_packet() -> None:
    policy = StartPolicy(auto_activate=True, expected_kinds=frozenset({"audio"}))
    assert policy.track_started("TR_a", "audio", T0) == [Do.REQUEST_KEYFRAME]  # activated
    assert policy.pending
    assert policy.audio(video_expected=False) == [Do.START_AUDIO_ONLY]
    assert policy.state is State.RECORDING
    assert policy.audio(video_expected=False) == []


def tick_until_video_wait(policy: StartPolicy, *, audio_held: bool) -> list[Do]:
    """The timers up to VIDEO_WAIT with no keyframe ever; what the last one said."""
    actions: list[Do] = []
    while (at := policy.deadline()) is not None and at <= T0 + VIDEO_WAIT:
        actions = policy.tick(at, buffered_keyframe=False, reports_ready=True,
                              audio_held=audio_held)
    return actions


def test_with_no_keyframe_by_the_video_wait_the_audio_held_starts_alone() -> None:
    policy = activated()
    assert tick_until_video_wait(policy, audio_held=True)[-1] is Do.START_WITHOUT_VIDEO
    assert policy.state is State.RECORDING and policy.deadline() is None
    assert policy.video_missing == f"no usable keyframe within {VIDEO_WAIT:g} s of activation"


def test_with_no_keyframe_and_no_audio_yet_the_next_audio_packet_starts_it() -> None:
    policy = activated()
    assert Do.START_WITHOUT_VIDEO not in tick_until_video_wait(policy, audio_held=False)
    assert policy.pending and policy.video_missing is None
    assert policy.tick(T0 + VIDEO_WAIT + KEYFRAME_WAIT, buffered_keyframe=False,
                       reports_ready=True) == [Do.REQUEST_KEYFRAME]  # still asking
    assert policy.audio(video_expected=True) == [Do.START_WITHOUT_VIDEO]
    assert policy.state is State.RECORDING and policy.video_missing is not None


def test_a_keyframe_after_the_video_wait_but_before_any_audio_starts_as_usual() -> None:
    policy = activated()
    tick_until_video_wait(policy, audio_held=False)
    assert policy.video(keyframe=True, reports_ready=True) == [Do.HOLD, Do.START]
    assert policy.video_missing is None


def test_a_held_keyframe_waiting_for_reports_is_not_given_up_at_the_video_wait() -> None:
    policy = activated(report_wait=VIDEO_WAIT + 5)
    policy.video(keyframe=True, reports_ready=False)
    assert Do.START_WITHOUT_VIDEO not in tick_until_video_wait(policy, audio_held=True)
    assert policy.pending and policy.holding and policy.video_missing is None


def test_audio_waits_for_video_when_a_video_track_is_there() -> None:
    policy = activated()
    assert policy.audio(video_expected=True) == []
    assert policy.pending


def test_auto_activation_waits_for_every_expected_track_or_the_track_wait() -> None:
    policy = StartPolicy(auto_activate=True)
    assert policy.track_started("TR_v", "video", T0) == [Do.REQUEST_KEYFRAME]
    assert policy.state is State.BUFFERING
    assert policy.deadline() == pytest.approx(T0 + TRACK_WAIT)
    assert policy.tick(T0 + TRACK_WAIT, buffered_keyframe=False,
                       reports_ready=False) == [Do.REQUEST_KEYFRAME]
    assert policy.pending and policy.activated_at == T0 + TRACK_WAIT


def test_auto_activation_is_immediate_once_every_expected_track_is_live() -> None:
    policy = StartPolicy(auto_activate=True)
    policy.track_started("TR_v", "video", T0)
    assert policy.track_started("TR_a", "audio", T0 + 0.2) == [Do.REQUEST_KEYFRAME]
    assert policy.pending and policy.activated_at == T0 + 0.2


def test_an_ended_track_no_longer_counts_as_expected() -> None:
    policy = StartPolicy(auto_activate=True)
    policy.track_started("TR_v", "video", T0)
    policy.track_ended("TR_v")
    policy.track_started("TR_a", "audio", T0)
    assert policy.state is State.BUFFERING


def test_a_republished_video_track_asks_for_its_keyframe_and_changes_no_state() -> None:
    policy = activated()
    policy.video(keyframe=True, reports_ready=True)
    assert policy.track_started("TR_v2", "video", T0 + 10) == [Do.REQUEST_KEYFRAME]
    assert policy.state is State.RECORDING and policy.deadline() is None


def test_without_activation_nothing_starts_and_no_timer_is_set() -> None:
    policy = StartPolicy()
    policy.track_started("TR_v", "video", T0)
    assert policy.video(keyframe=True, reports_ready=True) == []
    assert policy.deadline() is None


def test_stopped_before_it_began_it_writes_what_it_holds() -> None:
    policy = activated()
    policy.video(keyframe=True, reports_ready=False)  # held, waiting for reports
    assert policy.stop(buffered_keyframe=True) == [Do.START]
    assert policy.state is State.FINALIZING and policy.deadline() is None


def test_stopped_before_any_keyframe_the_buffered_one_is_still_used() -> None:
    policy = activated()
    assert policy.stop(buffered_keyframe=True) == [Do.HOLD, Do.START]


def test_stopped_with_nothing_to_start_on_it_just_ends() -> None:
    policy = activated()
    assert policy.stop(buffered_keyframe=False) == []
    policy.finished()
    assert policy.state is State.DONE
    assert policy.track_started("TR_v3", "video", T0) == []
    assert policy.activate(T0) == []


def test_activation_twice_is_one_activation() -> None:
    policy = activated()
    assert policy.activate(T0 + 1) == []
    assert policy.activated_at == T0
