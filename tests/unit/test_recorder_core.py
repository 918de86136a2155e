"""Pure parts of the recorder: lifecycle, timeline, segmenting, interleaving, playlist."""

import itertools
from datetime import UTC, datetime

import pytest

from publisher_hls_agent.hls.playlist import Playlist, Segment, render, rounded_duration
from publisher_hls_agent.hls.writer import target_duration_for
from publisher_hls_agent.media.rtp import SenderReport
from publisher_hls_agent.recorder.interleave import Interleaver
from publisher_hls_agent.recorder.segmenting import SegmentPolicy
from publisher_hls_agent.recorder.state import IllegalTransition, Lifecycle, State
from publisher_hls_agent.recorder.timeline import (
    clock_from_arrival,
    clock_from_report,
    track_timeline,
    unwrap_near,
)

pytestmark = pytest.mark.unit
S = 90000


def test_lifecycle_follows_the_documented_path_and_refuses_shortcuts() -> None:
    life = Lifecycle()
    for state in (State.BUFFERING, State.HANDSHAKE_READY, State.RECORDING_PENDING,
                  State.RECORDING, State.FINALIZING, State.DONE):
        life.to(state)
    assert life.state is State.DONE
    with pytest.raises(IllegalTransition, match="done -> recording"):
        life.to(State.RECORDING)
    fresh = Lifecycle()
    with pytest.raises(IllegalTransition, match="connecting -> recording"):
        fresh.to(State.RECORDING)


def test_unwrap_near_picks_the_nearest_cycle() -> None:
    assert unwrap_near(10, (5 << 32) + 20) == (5 << 32) + 10
    assert unwrap_near(0xFFFFFFF0, (5 << 32) + 5) == (4 << 32) + 0xFFFFFFF0
    assert unwrap_near(5, (5 << 32) + 0xFFFFFFF0) == (6 << 32) + 5


def test_sender_reports_line_audio_up_with_video() -> None:
    # Video keyframe at RTP 1_000_000 (90 kHz), which the sender stamped NTP 100.0 s.
    video = clock_from_report(SenderReport(100.0, 1_000_000, 0.0), 1_000_000, 90000)
    # Audio: RTP 5_000 (48 kHz) was NTP 99.5 s.
    audio = clock_from_report(SenderReport(99.5, 5_000, 0.0), 5_000, 48000)
    origin = video.seconds_at(1_000_000)
    v, a = track_timeline(video, origin), track_timeline(audio, origin)
    assert v.pts(1_000_000) == 0 and v.pts(1_003_000) == 3000
    # Audio sampled at NTP 100.0 s is 0.5 s after RTP 5_000: 24_000 ticks later.
    assert a.pts(5_000 + 24_000) == 0
    assert a.pts(5_000 + 24_000 + 960) == 960


def test_sender_report_across_the_rtp_wrap() -> None:
    reference = (1 << 32) + 100  # unwrapped timestamps just past a wrap
    clock = clock_from_report(SenderReport(50.0, 0xFFFFFF00, 0.0), reference, 90000)
    assert clock.rtp == 0xFFFFFF00
    assert clock.seconds_at(reference) == pytest.approx(50.0 + (reference - 0xFFFFFF00) / 90000)


def test_arrival_fallback() -> None:
    clock = clock_from_arrival(1000, 12.5, 48000)
    timeline = track_timeline(clock, 12.0)
    assert timeline.pts(1000) == 24000


def test_segments_cut_on_the_first_keyframe_after_the_target() -> None:
    policy = SegmentPolicy(target=2 * S, retry=S)
    assert policy.on_video(0, keyframe=False) is False  # nothing before a keyframe
    assert policy.on_video(3000, keyframe=True) is True
    assert policy.on_video(S, keyframe=True) is False  # too early
    assert not policy.wants_keyframe(3000 + 2 * S - 1)
    assert policy.wants_keyframe(3000 + 2 * S)
    assert not policy.wants_keyframe(3000 + 2 * S + 3000)  # asked already
    assert policy.on_video(3000 + 2 * S + 3000, keyframe=False) is False
    assert policy.wants_keyframe(3000 + 3 * S)  # retry after a second without one
    assert policy.on_video(3000 + 3 * S + 3000, keyframe=True)
    assert not policy.wants_keyframe(3000 + 3 * S + 6000)  # a new segment asks anew


def test_a_keyframe_a_tick_short_of_the_target_ends_the_segment() -> None:
    """A publisher with keyframes every 2 s whose clock rounds them a tick early: no
    keyframe request and no 4 s segment for it, (as measured with the SDK publisher)."""
    policy = SegmentPolicy(target=2 * S, retry=S)
    assert policy.on_video(0, keyframe=True)
    early = 2 * S - 90
    assert not policy.wants_keyframe(early, keyframe=True)  # arrived, not yet written
    assert not policy.wants_keyframe(early + 3000)  # the cut is on its way: no request
    assert policy.on_video(early, keyframe=True)
    assert not policy.on_video(early + S, keyframe=True)  # a second short: no cut


def _segments_with_a_publisher_answering(latency: int, seconds: int = 30) -> list[float]:
    """Segment durations (s) of a 30 fps publisher whose keyframe answers a request
    ``latency`` ticks of media time after it, frames written as they arrive."""
    policy = SegmentPolicy(target=2 * S, retry=S)
    answer_at: int | None = None
    cuts = []
    for pts in range(0, seconds * S, 3000):
        keyframe = pts == 0 or (answer_at is not None and pts >= answer_at)
        if keyframe:
            answer_at = None
        if policy.wants_keyframe(pts, keyframe) and answer_at is None:
            answer_at = pts + latency
        if policy.on_video(pts, keyframe):
            cuts.append(pts)
    return [(b - a) / S for a, b in itertools.pairwise(cuts)]


def test_a_publisher_slow_to_answer_is_asked_that_much_ahead_of_the_target() -> None:
    """Measured with the SDK publisher whose pacer queue held its video 0.6-0.7 s at
    the start: segments of 2.5-2.9 s while every request waited that long."""
    late = _segments_with_a_publisher_answering(latency=round(0.6 * S))
    assert late[0] == pytest.approx(2.6, abs=0.04)  # learnt on the first
    assert all(abs(d - 2.0) <= 0.04 for d in late[1:]), late
    quick = _segments_with_a_publisher_answering(latency=3000)  # the next frame
    assert all(abs(d - 2.0) <= 0.04 for d in quick), quick


def test_a_lead_is_never_more_than_half_the_target() -> None:
    policy = SegmentPolicy(target=2 * S, retry=S)
    slow = _segments_with_a_publisher_answering(latency=3 * S)
    # Asked a second ahead at most: 3 s answers make 4 s segments after the first 5 s.
    assert slow[0] == pytest.approx(5.0, abs=0.04)
    assert all(d == pytest.approx(4.0, abs=0.04) for d in slow[1:]), slow
    assert policy.lead == 0
    policy.on_video(0, keyframe=True)
    assert policy.wants_keyframe(2 * S)
    policy.wants_keyframe(5 * S, keyframe=True)
    assert policy.lead == S


def test_an_answer_just_short_of_half_the_target_does_not_end_the_segment() -> None:
    policy = SegmentPolicy(target=2 * S, retry=S)
    assert policy.on_video(0, keyframe=True)
    assert policy.wants_keyframe(2 * S)
    policy.wants_keyframe(2 * S + S, keyframe=True)  # a lead of a second, learnt
    assert policy.on_video(3 * S, keyframe=True)
    assert policy.wants_keyframe(3 * S + S)  # asked a second ahead
    assert not policy.on_video(3 * S + S - 3000, keyframe=True)  # before the request
    assert policy.on_video(3 * S + S, keyframe=True)  # the answer, at half the target


def test_audio_only_cuts_on_time() -> None:
    policy = SegmentPolicy(target=2 * S, retry=S)
    assert policy.on_audio_only(0)
    assert not policy.on_audio_only(2 * S - 1)
    assert policy.on_audio_only(2 * S)


def test_interleaver_waits_for_a_late_stream_but_not_for_a_stopped_one() -> None:
    mixer: Interleaver[str] = Interleaver(["audio", "video"], max_wait=1.0)
    assert mixer.push("video", 0, "v0", now=0.0) == []  # audio not heard from yet
    assert mixer.push("audio", 100, "a0", now=0.01) == [("video", 0, "v0")]
    assert mixer.push("video", 3000, "v1", now=0.02) == [("audio", 100, "a0")]
    # Video lags (a paced keyframe): audio far ahead in pts is still held back.
    held = [mixer.push("audio", 100 + 1920 * i, f"a{i}", now=0.02 + 0.02 * i)
            for i in range(1, 40)]
    assert [item for batch in held for _, _, item in batch] == ["a1", "v1"]
    late_keyframe = mixer.push("video", 6000, "v2", now=0.9)
    assert [item for _, _, item in late_keyframe] == ["a2", "a3", "v2"]
    # Video stops: after max_wait without a packet, audio goes on alone.
    out = mixer.push("audio", 100 + 1920 * 40, "a40", now=2.0)
    released = [pts for _, pts, _ in out]
    assert released == sorted(released)
    assert [item for _, _, item in out] == [f"a{i}" for i in range(4, 41)]
    assert mixer.flush() == []


def test_a_held_stream_is_waited_for_past_max_wait_but_not_for_ever() -> None:
    mixer: Interleaver[str] = Interleaver(["audio", "video"], max_wait=1.0, max_hold=10.0)
    mixer.push("video", 0, "v0", now=0.0)
    mixer.hold("video", True)  # pictures are in a transcoder's backlog
    out = [mixer.push("audio", 1920 * i, f"a{i}", now=0.02 * i) for i in range(200)]
    assert [item for batch in out for _, _, item in batch] == ["v0", "a0"]  # 4 s: waiting
    late = mixer.push("video", 3000, "v1", now=4.0)
    assert [item for _, _, item in late] == ["a1", "v1"]
    mixer.hold("video", False)
    out = mixer.push("audio", 1920 * 200, "a200", now=5.1)  # not held: 1 s is stopped
    assert [item for _, _, item in out][-1] == "a200"
    mixer.hold("video", True)
    assert mixer.push("audio", 1920 * 201, "a201", now=5.2) == []  # held again
    assert mixer.push("audio", 1920 * 202, "a202", now=14.1)[-1][2] == "a202"  # stuck: 10 s


def test_playlist_event_window_and_end() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    playlist = Playlist(target_duration=3)
    for i in range(3):
        playlist, removed = playlist.add(Segment(f"s{i}.ts", 2.1, i, discontinuity=i == 2,
                                                 program_date_time=when))
        assert removed == []
    text = render(playlist.end())
    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n"
                           "#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE:0\n")
    assert "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z\n#EXTINF:2.100000,\ns0.ts" in text
    assert "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME" in text
    assert text.endswith("s2.ts\n#EXT-X-ENDLIST\n")

    window = Playlist(target_duration=3, max_segments=2)
    for i in range(4):
        window, removed = window.add(Segment(f"s{i}.ts", 2.0, i, discontinuity=i == 1))
    assert [s.uri for s in window.segments] == ["s2.ts", "s3.ts"]
    text = render(window)
    assert "PLAYLIST-TYPE" not in text
    assert "#EXT-X-MEDIA-SEQUENCE:2\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n" in text
    with pytest.raises(ValueError, match="ended"):
        window.end().add(Segment("x.ts", 1.0, 9))


def test_a_segment_past_the_target_raises_it_so_every_playlist_stays_valid() -> None:
    """A starved browser answered the keyframe request 2.7 s late: its segment cannot
    be cut before that keyframe, so the playlist's target grows to hold it, and never
    shrinks again."""
    playlist = Playlist(target_duration=3)
    for i, seconds in enumerate([2.0, 4.688, 2.0, 3.49]):
        playlist, _ = playlist.add(Segment(f"s{i}.ts", seconds, i))
        assert all(rounded_duration(s.duration) <= playlist.target_duration
                   for s in playlist.segments)
    assert playlist.target_duration == 5
    assert "#EXT-X-TARGETDURATION:5\n" in render(playlist.end())


@pytest.mark.parametrize("target", [1, 1.5, 2, 4, 6, 10])
def test_target_duration_leaves_room_for_late_keyframes(target: float) -> None:
    assert rounded_duration(target + 0.49) <= target_duration_for(target)
    assert rounded_duration(2.5) == 3 and rounded_duration(2.49) == 2
