"""How an activated recorder gets the keyframe it starts on."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher_hls_agent.media.track import RemoteTrack
from publisher_hls_agent.recorder.options import RecorderOptions
from publisher_hls_agent.recorder.recorder import Recorder
from publisher_hls_agent.recorder.start import KEYFRAME_WAIT
from publisher_hls_agent.recorder.state import State

from .fake_time import FakeTime
from .recorder_room import AUDIO, VIDEO, Room

pytestmark = pytest.mark.unit


def test_a_recorder_without_any_keyframe_keeps_asking(tmp_path: Path) -> None:
    """The first requests can reach no one (made before the track's first packet); a
    publisher that sends keyframes only when asked would otherwise never be recorded."""
    time = FakeTime()
    requests: list[float] = []
    recorder = Recorder("room", "alice", RecorderOptions(
        output_dir=tmp_path, auto_activate=True, expected_kinds=frozenset({"video"})),
        request_keyframe=lambda: requests.append(time.now), sender_report=lambda sid: None,
        clock=time.clock, schedule=time.schedule)
    recorder.on_track_started(RemoteTrack("TR_v", "video", "video/VP9", recorded_codec="vp9"))
    assert recorder.state is State.RECORDING_PENDING
    asked_at_activation = len(requests)
    time.advance(5.5)
    assert len(requests) >= asked_at_activation + 5
    assert requests[-1] - requests[-2] == pytest.approx(KEYFRAME_WAIT)
    assert recorder.state is State.RECORDING_PENDING
    recorder.finalize()
    settled = len(requests)
    time.advance(10)
    assert len(requests) == settled and not time.pending()  # a finalized recorder asks no more


def test_a_recording_that_ends_before_the_reports_came_writes_what_it_held(
        tmp_path: Path) -> None:
    """The publisher leaves 2 s after activation, before LiveKit's first sender report:
    what came from the keyframe on is written, lined up by arrival (it was thrown away,
    and the job ended "after 0 recordings")."""
    from publisher_hls_agent.media import h264
    from publisher_hls_agent.media.units import AccessUnit

    from .h264_samples import IDR, PPS, SLICE, SPS
    from .structure import check_structure

    time = FakeTime()
    recorder = Recorder("room", "alice", RecorderOptions(
        output_dir=tmp_path, auto_activate=True, expected_kinds=frozenset({"video"}),
        segment_duration=1.0), request_keyframe=lambda: None, sender_report=lambda sid: None,
        clock=time.clock, schedule=time.schedule)
    recorder.on_track_started(RemoteTrack("TR_v", "video", "video/H264", recorded_codec="h264"))
    assert recorder.state is State.RECORDING_PENDING
    now = time.now
    for index in range(60):  # 2 s at 30 fps, a keyframe each second
        keyframe = index % 30 == 0
        data = h264.to_annexb([SPS, PPS, IDR] if keyframe else [SLICE])
        recorder.on_video("TR_v", AccessUnit(data, 90_000 + 3000 * index, now + index / 30,
                                             keyframe, keyframe, False))
    assert recorder.state is State.RECORDING_PENDING  # still waiting for the reports
    summary = recorder.finalize("participant left")
    assert summary is not None and summary["aligned_by"] == "arrival times"
    assert summary["frames"]["video"] == 60 and summary["duration"] == pytest.approx(2.0)
    report = check_structure(tmp_path / summary["folder"])
    assert report.ok, report.render()


# --- the whole start, through the shell, on a fake clock -----------------------------------

def test_with_reports_a_recording_starts_on_the_next_keyframe_lined_up_by_them(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    room = Room(tmp_path, auto_activate=True)
    room.reports_from = 0.0
    room.recorder.on_track_started(VIDEO)
    room.recorder.on_track_started(AUDIO)
    assert room.recorder.state is State.RECORDING_PENDING and room.keyframe_requests >= 1
    room.play(3.0, opus_packets)
    assert room.recorder.state is State.RECORDING
    summary = room.recorder.finalize()
    assert summary is not None and summary["aligned_by"] == "sender reports"
    assert summary["duration"] == pytest.approx(3.0, abs=0.05)
    assert 1.0 <= summary["first_segment_after_activation"] <= 1.2  # + the interleaving


def test_reports_that_never_come_start_it_by_arrival_after_the_report_wait(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    from publisher_hls_agent.recorder.start import report_wait_for
    wait = report_wait_for(1.0)  # the room's segments are of 1 s
    room = Room(tmp_path, auto_activate=True)
    room.recorder.on_track_started(VIDEO)
    room.recorder.on_track_started(AUDIO)
    room.play(wait - 0.1, opus_packets)
    assert room.recorder.state is State.RECORDING_PENDING  # holding, nothing on disk
    room.play(3.0, opus_packets, start=wait - 0.1)
    summary = room.recorder.finalize()
    assert summary is not None and summary["aligned_by"] == "arrival times"
    assert "audio_moved" not in summary
    # Nothing held was lost: the recording starts at the first keyframe, t=0.
    assert summary["duration"] == pytest.approx(wait + 2.9, abs=0.05)
    # the first segment is not late for want of reports
    assert summary["first_segment_after_activation"] <= 1.0 + 0.2


def test_the_wait_for_reports_never_makes_the_first_segment_late() -> None:
    from publisher_hls_agent.recorder.start import REPORT_WAIT, report_wait_for
    assert report_wait_for(2.0) == 1.5
    assert report_wait_for(1.0) == 0.5 and report_wait_for(0.5) == 0.5
    assert report_wait_for(10.0) == REPORT_WAIT


@pytest.mark.parametrize("skew", [0.03, -0.05])
def test_reports_that_come_after_the_start_move_the_audio_once_at_a_pause(
        tmp_path: Path, opus_packets: list[bytes], skew: float) -> None:
    """Begun by arrival times (the reports come 2 s after activation, past the wait):
    once they come, the audio goes where they put it, at a silent packet; the video
    stays where it was, and the recording stays valid."""
    from .recorder_room import opus_packets_of
    from .structure import check_structure
    room = Room(tmp_path, auto_activate=True, keep_opus=True)
    room.reports_from, room.audio_report_skew = 2.0, skew
    room.recorder.on_track_started(VIDEO)
    room.recorder.on_track_started(AUDIO)
    tone = opus_packets_of(50, tone=440.0)
    room.play(2.5, tone)  # no pause: nothing moves yet
    assert room.recorder.state is State.RECORDING
    silent = opus_packets_of(10)
    assert all(len(packet) <= 3 for packet in silent[2:])  # libopus's silence
    room.play(2.0, silent[2:], start=2.5)
    summary = room.recorder.finalize()
    assert summary is not None
    assert summary["aligned_by"] == "arrival times, then sender reports"
    moved = summary["audio_moved"]
    assert moved["by"] == pytest.approx(skew, abs=0.001)
    assert 2.5 <= moved["at"] <= 2.6  # at the first silent packet
    assert summary["first_segment_after_activation"] <= 1.0 + 0.2
    report = check_structure(Path(summary["folder"]))
    assert report.ok, report.render()


def test_audio_that_comes_after_the_start_is_placed_on_the_same_timeline(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    from .structure import check_structure
    """Both tracks published, the audio's first packet 2 s after the start (a muted
    microphone, say): placed by its sender report where the video's put t=0."""
    room = Room(tmp_path, auto_activate=True)
    room.reports_from = 0.0
    room.recorder.on_track_started(VIDEO)
    room.recorder.on_track_started(AUDIO)
    room.play(2.0, opus_packets, audio=False)
    assert room.recorder.state is State.RECORDING
    room.play(3.0, opus_packets, start=2.0)
    summary = room.recorder.finalize()
    assert summary is not None and summary["audio"] is not None
    assert summary["frames"]["audio"] == pytest.approx(3.0 * 48_000 / 1024, abs=3)  # AAC
    report = check_structure(Path(summary["folder"]))
    assert report.ok, report.render()


def test_a_recording_that_cannot_begin_ends_itself_with_the_reason(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    (tmp_path / "out").write_text("a file where the recordings' folder should be")
    room = Room(tmp_path / "out", auto_activate=True, expected_kinds=frozenset({"video"}))
    room.reports_from = 0.0
    room.recorder.on_track_started(VIDEO)
    room.play(1.5, opus_packets, audio=False)  # would raise here if the failure escaped
    assert room.ended and "could not start" in room.ended[0]
    assert room.recorder.finalize() is None and room.recorder.state is State.DONE


def test_stop_before_activation_records_nothing_and_leaves_no_timer(tmp_path: Path) -> None:
    room = Room(tmp_path)  # manual activation, never activated
    room.recorder.on_track_started(VIDEO)
    assert room.recorder.finalize() is None
    assert not room.time.pending() and not list(tmp_path.iterdir())
    assert room.recorder.nothing_recorded == "the recording was never activated"


def test_a_video_track_without_keyframes_does_not_silence_the_audio(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    """A camera whose frames never make a usable keyframe (the landed tree waited 165 s
    for one and wrote nothing, its audio neither): VIDEO_WAIT after activation the
    recording begins on the audio (the last second held), and the video joins at its
    first keyframe, after a DISCONTINUITY, placed by its own sender report."""
    from publisher_hls_agent.inspection.playlist import MediaPlaylist
    from publisher_hls_agent.layout import PLAYLIST_NAME
    from publisher_hls_agent.recorder.start import VIDEO_WAIT

    from .structure import check_structure
    room = Room(tmp_path, auto_activate=True)
    room.reports_from = 0.0
    room.recorder.on_track_started(VIDEO)
    room.recorder.on_track_started(AUDIO)
    room.play(VIDEO_WAIT - 0.1, opus_packets, keyframes_from=float("inf"))
    assert room.recorder.state is State.RECORDING_PENDING
    room.play(2.1, opus_packets, start=VIDEO_WAIT - 0.1, keyframes_from=float("inf"))
    assert room.recorder.state is State.RECORDING  # on the audio alone
    requests = room.keyframe_requests
    room.play(4.0, opus_packets, start=VIDEO_WAIT + 2.0, keyframes_from=VIDEO_WAIT + 3.0)
    assert room.keyframe_requests > requests  # asked for the video's keyframe meanwhile
    summary = room.recorder.finalize()
    assert summary is not None and summary["video"] is not None
    missing = summary["video_missing"]
    assert missing["reason"] == f"no usable keyframe within {VIDEO_WAIT:g} s of activation"
    # t=0 is the first audio held, a second before the wait ended; the video's keyframe
    # at VIDEO_WAIT + 3 s lands 4 s in, by the reports.
    assert missing["joined_at"] == pytest.approx(4.0, abs=0.03)
    assert summary["duration"] == pytest.approx(7.0, abs=0.05)
    assert summary["frames"]["video"] == pytest.approx(90, abs=1)
    report = check_structure(Path(summary["folder"]))
    assert report.ok, report.render()
    playlist = MediaPlaylist.parse((Path(summary["folder"]) / PLAYLIST_NAME).read_text())
    joined = [entry.discontinuity for entry in playlist.entries]
    assert joined.count(True) == 1 and not joined[0]


def test_in_fmp4_a_video_track_without_keyframes_leaves_an_audio_recording(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    """fMP4 declares its tracks once: the video stays out, and the summary says why."""
    from publisher_hls_agent.recorder.start import VIDEO_WAIT

    from .structure import check_structure
    room = Room(tmp_path, auto_activate=True, keep_opus=True)
    room.recorder.on_track_started(VIDEO)
    room.recorder.on_track_started(AUDIO)
    room.play(VIDEO_WAIT + 2.0, opus_packets, keyframes_from=float("inf"))
    room.play(2.0, opus_packets, start=VIDEO_WAIT + 2.0)  # keyframes now: too late
    summary = room.recorder.finalize()
    assert summary is not None and summary["video"] is None
    assert summary["duration"] == pytest.approx(5.0, abs=0.05)
    assert [t["sid"] for t in summary["tracks_not_recorded"]] == ["TR_v"]
    assert "cannot add a track" in summary["tracks_not_recorded"][0]["reason"]
    report = check_structure(Path(summary["folder"]))
    assert report.ok, report.render()


def test_an_activated_recording_with_nothing_to_start_on_says_so(tmp_path: Path) -> None:
    from publisher_hls_agent.recorder.start import VIDEO_WAIT
    room = Room(tmp_path, auto_activate=True)
    room.recorder.on_track_started(VIDEO)
    room.recorder.on_track_started(AUDIO)
    room.time.advance(VIDEO_WAIT + 1)  # no media at all
    assert room.recorder.state is State.RECORDING_PENDING
    assert room.recorder.finalize() is None and room.recorder.activated
    assert room.recorder.nothing_recorded == ("activated, but neither a keyframe nor audio "
                                              "came to start on")


def test_what_was_held_is_replayed_in_the_order_it_came(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    """Held while the sender reports are awaited, a frame that a late retransmission
    completed carries a later arrival than the frame after it. Replayed sorted by
    arrival, it came second, was dropped as out of order, and every picture after it
    until the next keyframe was undecodable (a 1 % loss recording's segment 0)."""
    room = Room(tmp_path, auto_activate=True)
    room.reports_from = 0.4  # (within the report wait: the start waits for them)
    room.recorder.on_track_started(VIDEO)
    room.recorder.on_track_started(AUDIO)
    room.play(3.0, opus_packets, late=frozenset({10, 40}))
    summary = room.recorder.finalize()
    assert summary is not None and summary["aligned_by"] == "sender reports"
    assert summary["frames"]["dropped"] == 0, summary["frames"]
    assert summary["frames"]["video"] == 90
