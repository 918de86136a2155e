"""The recording pipeline fed directly: parameter sets, discontinuities, frozen video.

Real Opus packets (libopus through PyAV) and H.264 NAL units with real headers go in;
real files come out and are judged by ``check``. No network, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiortc.rtp import RtpPacket

from publisher_hls_agent.hls.mpegts import Streams
from publisher_hls_agent.hls.writer import TsHlsWriter
from publisher_hls_agent.media import h264
from publisher_hls_agent.media.track import RemoteTrack
from publisher_hls_agent.media.units import AccessUnit, AudioPacket
from publisher_hls_agent.recorder.pipeline import RecordingPipeline
from publisher_hls_agent.recorder.timeline import TrackTimeline
from publisher_hls_agent.room.tracks import H264Reader

from .h264_samples import IDR, PPS, SLICE, SPS, packetize
from .recorder_room import opus_packets_of
from .structure import check_structure

pytestmark = pytest.mark.unit

OTHER_SPS = SPS[:-1] + bytes([SPS[-1] ^ 0x01])  # another resolution, as far as bytes go


@pytest.fixture(scope="module")
def opus_packets() -> list[bytes]:
    return opus_packets_of(1000, tone=440.0)


class Feed:
    """Plays media into a pipeline as a room would: interleaved by arrival time, the
    video as RTP through the H.264 reader, and with a publisher that, once asked for a
    keyframe, remembers it until it sends one."""

    def __init__(self, folder: Path) -> None:
        self.requests = 0
        self.asked = False
        self.reader = H264Reader(RemoteTrack("TR_v", "video", "video/H264"), self,
                                 lambda: None)
        self._sequence = 0
        writer = TsHlsWriter(folder, Streams(video=True, audio=True), segment_duration=2.0,
                             max_segments=0, started_at=datetime(2026, 1, 1, tzinfo=UTC))
        self.pipeline = RecordingPipeline(writer, has_video=True, has_audio=True,
                                          segment_duration=2.0, audio_channels=1,
                                          audio_codec="aac", request_keyframe=self._request)
        self.pipeline.set_video_timeline(0)
        self.pipeline.audio_timeline = TrackTimeline(0)

    def _request(self) -> None:
        self.requests += 1
        self.asked = True

    def on_video(self, track_sid: str, unit: AccessUnit) -> None:  # the reader's consumer
        self.pipeline.video(unit)

    def send(self, data: bytes, timestamp: int, now: float) -> None:
        payloads = packetize(h264.split_annexb(data))
        for index, payload in enumerate(payloads):
            self.reader.on_rtp(RtpPacket(payload_type=96, sequence_number=self._sequence,
                                         timestamp=timestamp, marker=index == len(payloads) - 1,
                                         payload=payload), now)
            self._sequence += 1

    def run(self, seconds: float, opus: list[bytes],
            video: Callable[[int, bool], bytes | None], audio_until: float = 1e9) -> None:
        """``video(index, asked)`` gives frame ``index``'s access unit or None; ``asked``
        says a keyframe was requested since the last frame."""
        last_index = -1
        for ms in range(int(seconds * 1000)):
            now = ms / 1000
            if ms % 20 == 0 and now < audio_until:
                self.pipeline.audio(AudioPacket(opus[ms // 20], ms * 48, now))
            index = ms * 30 // 1000  # 30 fps
            if index != last_index:
                last_index = index
                data = video(index, self.asked)
                if data is not None:
                    idr, _, _ = h264.describe_access_unit(h264.split_annexb(data))
                    self.asked = self.asked and not idr
                    self.send(data, index * 3000, now)
        self.pipeline.writer.finish(self.pipeline.finish())


def test_a_keyframe_without_parameter_sets_gets_the_last_ones(tmp_path: Path,
                                                              opus_packets: list[bytes]) -> None:
    feed = Feed(tmp_path)

    def video(index: int, asked: bool) -> bytes:
        if index == 0:
            return h264.to_annexb([SPS, PPS, IDR])
        return h264.to_annexb([IDR] if index % 60 == 0 else [SLICE])

    feed.run(6.5, opus_packets, video)
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    assert [s.video_start for s in report.segments] == ["SPS,PPS,IDR"] * 4
    assert feed.reader.stats.parameter_sets_added == 3


def test_new_parameter_sets_start_a_segment_after_a_discontinuity(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    feed = Feed(tmp_path)

    def video(index: int, asked: bool) -> bytes:
        sps = SPS if index < 75 else OTHER_SPS
        keyframe = index % 60 == 0 or index == 75 or asked
        return h264.to_annexb([sps, PPS, IDR] if keyframe else [SLICE])

    feed.run(6.5, opus_packets, video)
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    playlist = (tmp_path / "playlist.m3u8").read_text()
    assert playlist.count("#EXT-X-DISCONTINUITY\n") == 1
    assert [round(s.extinf, 3) for s in report.segments][:2] == [2.0, 0.5]
    assert max(s.extinf for s in report.segments) <= 2.5


def test_video_that_stops_freezes_and_segments_keep_their_length(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    feed = Feed(tmp_path)

    def video(index: int, asked: bool) -> bytes | None:
        if 45 <= index < 345:  # 1.5 s to 11.5 s: the camera sends nothing
            return None
        keyframe = index % 300 == 0 or (asked and index >= 350)  # slow to answer the PLI
        return h264.to_annexb([SPS, PPS, IDR] if keyframe else [SLICE])

    feed.run(16, opus_packets, video)
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    durations = [s.extinf for s in report.segments]
    assert max(durations[:-1]) <= 2.5, durations
    assert feed.pipeline.stats.frozen_frames >= 4
    assert feed.pipeline.stats.dropped_frames == 5  # P-frames before the keyframe
    assert feed.requests > 0


def keyframe_every_two_seconds(index: int, asked: bool) -> bytes:
    """Frame ``index`` of a 30 fps camera with a keyframe every 60 frames."""
    return h264.to_annexb([SPS, PPS, IDR] if index % 60 == 0 else [SLICE])


def test_a_keyframe_the_audio_never_reached_does_not_end_it_on_a_silent_segment(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    """The session ends with a keyframe (a PLI's answer, due for a cut) whose audio had
    not come yet: flushed at the end, it used to begin a last segment of a few frames
    and no audio, which check (and players) refuse. It extends the open one instead."""
    Feed(tmp_path).run(6.1, opus_packets, keyframe_every_two_seconds, audio_until=5.95)
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    assert [round(s.extinf, 1) for s in report.segments] == [2.0, 2.0, 2.1]


def video_only(folder: Path) -> tuple[TsHlsWriter, RecordingPipeline]:
    """A pipeline for video alone, into MPEG-TS segments of 2 s, its timeline at 0."""
    writer = TsHlsWriter(folder, Streams(video=True, audio=False), segment_duration=2.0,
                         max_segments=0, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    pipeline = RecordingPipeline(writer, has_video=True, has_audio=False,
                                 segment_duration=2.0, audio_channels=1, audio_codec="aac",
                                 request_keyframe=lambda: None)
    pipeline.set_video_timeline(0)
    return writer, pipeline


def test_a_republished_track_continues_after_a_discontinuity(tmp_path: Path) -> None:
    from publisher_hls_agent.recorder.timeline import TrackClock

    writer, pipeline = video_only(tmp_path)

    def send(rtp: int, now: float, keyframe: bool) -> None:
        data = h264.to_annexb([SPS, PPS, IDR] if keyframe else [SLICE])
        pipeline.video(AccessUnit(data, rtp, now, keyframe, keyframe, False))

    for index in range(75):  # 2.5 s, then the track is unpublished
        send(index * 3000, index / 30, index % 60 == 0)
    # Republished 3 s later on a new RTP clock, placed by arrival time.
    base = 123_456_789
    pipeline.place_video(TrackClock(base, 5.5, 90000), origin_seconds=0.0)
    for index in range(90):
        send(base + index * 3000, 5.5 + index / 30, index % 60 == 0)
    writer.finish(pipeline.finish())
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    text = (tmp_path / "playlist.m3u8").read_text()
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1
    assert [round(s.start or 0, 3) for s in report.segments] == [0.0, 2.0, 5.5, 7.5]
    assert round(report.segments[1].extinf, 3) == 0.5  # up to its last frame, not to 5.5


def test_the_last_picture_lasts_a_frame_not_the_publishers_last_pause(tmp_path: Path) -> None:
    """A starved browser sent its last pictures a second apart: the last one lasts as
    long as the pictures before it did (what check reads), not that second."""
    writer, pipeline = video_only(tmp_path)
    stamps = [index * 3000 for index in range(75)] + [75 * 3000 + 90000]  # then 1 s later
    for index, rtp in enumerate(stamps):
        keyframe = index % 60 == 0
        data = h264.to_annexb([SPS, PPS, IDR] if keyframe else [SLICE])
        pipeline.video(AccessUnit(data, rtp, rtp / 90000, keyframe, keyframe, False))
    end = pipeline.finish()
    assert end == stamps[-1] + 3000
    writer.finish(end)
    report = check_structure(tmp_path)
    assert report.ok, report.render()


def test_a_publisher_that_pauses_everything_resumes_after_a_discontinuity(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    """Camera and microphone both stop for 10 s (both muted, or the network gone), and
    video comes back first: the segment before the pause ends with its media, the one
    after starts on the new keyframe after a DISCONTINUITY; audio that the silence
    filler places inside the pause, released only after that keyframe, is dropped."""
    feed = Feed(tmp_path)
    pipeline = feed.pipeline
    for ms in range(16000):
        now = ms / 1000
        paused = 1500 <= ms < 11500
        if ms % 20 == 0 and not paused and not 11500 <= ms < 11600:
            pipeline.audio(AudioPacket(opus_packets[ms // 20], ms * 48, now))
        if ms % 33 == 0 and not paused:
            index = ms // 33
            keyframe = index % 60 == 0 or ms == 11517
            pipeline.video(AccessUnit(h264.to_annexb([SPS, PPS, IDR] if keyframe else [SLICE]),
                                      index * 2970, now, keyframe, keyframe, False))
    pipeline.writer.finish(pipeline.finish())
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    playlist = (tmp_path / "playlist.m3u8").read_text()
    assert playlist.count("#EXT-X-DISCONTINUITY\n") == 1
    assert max(s.extinf for s in report.segments) <= 2.5
    assert pipeline.stats.late_audio_frames > 0


class FlakyWriter(TsHlsWriter):
    """A writer whose disk fails once, on the video frame at ``fail_at`` seconds."""

    def __init__(self, folder: Path, fail_at: float) -> None:
        super().__init__(folder, Streams(video=True, audio=True), segment_duration=2.0,
                         max_segments=0, started_at=datetime(2026, 1, 1, tzinfo=UTC))
        self.fail_at = round(fail_at * 90000)

    def write_video(self, annexb: bytes, pts: int, keyframe: bool) -> None:
        if pts >= self.fail_at:
            self.fail_at = 1 << 62
            raise OSError(28, "No space left on device")
        super().write_video(annexb, pts, keyframe)


def test_a_failure_inside_restarts_the_pipeline_at_the_next_keyframe(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    writer = FlakyWriter(tmp_path, fail_at=3.0)
    asked: list[int] = []
    pipeline = RecordingPipeline(writer, has_video=True, has_audio=True, segment_duration=2.0,
                                 audio_channels=1, audio_codec="aac",
                                 request_keyframe=lambda: asked.append(1))
    pipeline.set_video_timeline(0)
    pipeline.audio_timeline = TrackTimeline(0)
    keyframe_due = False
    for ms in range(9000):
        now = ms / 1000
        try:
            if ms % 20 == 0:
                pipeline.audio(AudioPacket(opus_packets[ms // 20], ms * 48, now))
            if ms % 33 == 0:
                index = ms // 33
                keyframe = index % 60 == 0 or (keyframe_due and index % 5 == 0)
                keyframe_due = keyframe_due and not keyframe
                pipeline.video(AccessUnit(
                    h264.to_annexb([SPS, PPS, IDR] if keyframe else [SLICE]),
                    index * 2970, now, keyframe, keyframe, False))
        except OSError:
            pipeline.restart()  # what the recorder does (Recorder._guarded)
            keyframe_due = True
    writer.finish(pipeline.finish())
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    assert pipeline.stats.restarts == 1 and asked
    assert (tmp_path / "playlist.m3u8").read_text().count("#EXT-X-DISCONTINUITY\n") == 1
    assert report.segments[-1].extinf > 1.0  # the recording went on after the restart


def test_a_layer_switch_right_after_a_cut_does_not_leave_a_one_frame_segment(
        tmp_path: Path) -> None:
    """The server switches simulcast layers on the keyframes a PLI made on every layer:
    the new layer's keyframe comes one tick after the old one's, which began a segment."""
    from publisher_hls_agent.media.blank import H264_BLANK_SPS as OTHER_SPS

    writer, pipeline = video_only(tmp_path)

    def send(rtp: int, keyframe: bool, sps: bytes = SPS) -> None:
        data = h264.to_annexb([sps, PPS, IDR] if keyframe else [SLICE])
        pipeline.video(AccessUnit(data, rtp, rtp / 90000, keyframe, keyframe, False,
                                  config=sps if keyframe else b""))  # as the reader says

    for index in range(61):  # keyframes at 0 and 2.0 s: the second begins segment 1
        send(index * 3000, index % 60 == 0)
    send(180_001, True, OTHER_SPS)  # the higher layer, one tick later
    for index in range(1, 60):
        send(180_001 + index * 3000, False)
    writer.finish(pipeline.finish())
    segments = writer.segments
    assert [(s.sequence, s.discontinuity) for s in segments] == [(0, False), (1, True)]
    assert segments[1].start_pts == 180_001 and segments[1].duration > 1.9
    text = (tmp_path / "playlist.m3u8").read_text()
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1


def late_picture(index: int, now: float) -> AccessUnit:
    """Picture ``index`` of 30 fps H.264 (a keyframe every 2 s), handed over at ``now``
    by a transcoder behind: ``delay`` says by how much."""
    keyframe = index % 60 == 0
    return AccessUnit(h264.to_annexb([SPS, PPS, IDR] if keyframe else [SLICE]), index * 3000,
                      arrival=index / 30, keyframe=keyframe, has_parameter_sets=keyframe,
                      after_loss=False, delay=now - index / 30)


def test_video_from_a_transcoder_seconds_behind_is_all_recorded(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    """A transcoder behind on a busy machine hands pictures over up to 3 s after they
    arrived (AccessUnit.delay): the audio waits for them rather than taking the video
    stream for stopped, and every picture lands in its segment."""
    feed = Feed(tmp_path)
    pipeline, lag = feed.pipeline, 3.0
    due = [(index / 30 + lag * min(1.0, index / 90), index) for index in range(240)]
    for ms in range(int((8 + lag) * 1000)):
        now = ms / 1000
        if ms % 20 == 0 and ms < 8000:
            pipeline.audio(AudioPacket(opus_packets[ms // 20], ms * 48, now))
        while due and due[0][0] <= now:
            _, index = due.pop(0)
            pipeline.video(late_picture(index, now))
    pipeline.writer.finish(pipeline.finish())
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    assert pipeline.stats.video_frames == 240 and pipeline.stats.dropped_frames == 0
    assert pipeline.stats.late_audio_frames == 0
    assert pipeline.stats.most_video_delay >= lag - 0.01
    assert [round(s.extinf, 1) for s in report.segments] == [2.0] * 4


def test_a_transcoder_starved_for_seconds_freezes_nothing(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    """The transcoder gets no CPU for 2.5 s (a machine busy with other work) and then
    catches up: its frames were pending meanwhile (video_pending), so the audio waits
    for them; nothing is frozen or dropped."""
    feed = Feed(tmp_path)
    pipeline = feed.pipeline
    delivered = 0
    for ms in range(10_000):
        now = ms / 1000
        if ms % 20 == 0 and ms < 8000:
            pipeline.audio(AudioPacket(opus_packets[ms // 20], ms * 48, now))
        if ms == 0:
            pipeline.video_pending(True)  # (in a transcoder with a backlog, always)
        starved = 3.0 <= now < 5.5
        while not starved and delivered < 240 and delivered / 30 <= now:
            index, delivered = delivered, delivered + 1
            pipeline.video(late_picture(index, now))
    pipeline.writer.finish(pipeline.finish())
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    stats = pipeline.stats
    assert (stats.video_frames, stats.dropped_frames, stats.frozen_frames) == (240, 0, 0)
    assert stats.most_video_delay >= 2.4


def stop_and_go_silent(pipeline: RecordingPipeline, tone: list[bytes], silence: list[bytes],
                       *, stop: float, end: float, back: float | None = None) -> None:
    """Camera and sound until ``stop``; then no picture and silent packets (an idle SDK
    source: a few bytes each) until ``back`` (never, if None); the session ends at
    ``end``."""
    for ms in range(int(end * 1000)):
        now = ms / 1000
        live = now < stop or (back is not None and now >= back)
        if ms % 20 == 0:
            pipeline.audio(AudioPacket((tone if live else silence)[ms // 20], ms * 48, now))
        if ms % 33 == 0 and live:
            index = ms // 33
            keyframe = index % 30 == 0 or (back is not None and ms == round(back * 1000) + 1)
            pipeline.video(AccessUnit(h264.to_annexb([SPS, PPS, IDR] if keyframe else [SLICE]),
                                      index * 2970, now, keyframe, keyframe, False))
    pipeline.writer.finish(pipeline.finish())


@pytest.fixture(scope="module")
def silent_packets() -> list[bytes]:
    return opus_packets_of(1000, tone=0.0)


def test_a_frozen_silent_end_is_cut_where_the_real_media_ends(
        tmp_path: Path, opus_packets: list[bytes], silent_packets: list[bytes]) -> None:
    """The publisher's camera stops at 4.5 s and its microphone sends only silence until
    it leaves at 9 s: the recording ends at 4.5 s, and output.ts with it."""
    feed = Feed(tmp_path)
    stop_and_go_silent(feed.pipeline, opus_packets, silent_packets, stop=4.5, end=9.0)
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    writer = feed.pipeline.writer
    end = writer.end_pts / 90000
    assert 4.45 <= end <= 4.6, end
    assert 4.3 <= writer.trimmed <= 4.6, writer.trimmed
    assert feed.pipeline.stats.frozen_frames >= 1  # it was bridged, then cut
    assert (tmp_path / "output.ts").stat().st_size == sum(s.bytes for s in writer.segments)
    assert sorted(p.name for p in tmp_path.glob("segment*")) == [s.name for s in writer.segments]


def test_a_frozen_silent_pause_is_kept_when_the_publisher_comes_back(
        tmp_path: Path, opus_packets: list[bytes], silent_packets: list[bytes]) -> None:
    feed = Feed(tmp_path)
    stop_and_go_silent(feed.pipeline, opus_packets, silent_packets, stop=3.0, end=12.0,
                       back=8.0)
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    writer = feed.pipeline.writer
    assert writer.trimmed == 0
    assert [s.sequence for s in writer.segments] == list(range(len(writer.segments)))
    assert writer.end_pts / 90000 >= 11.9


def test_an_fmp4_recording_is_cut_where_the_real_media_ends(
        tmp_path: Path, opus_packets: list[bytes], silent_packets: list[bytes]) -> None:
    from publisher_hls_agent.hls.fmp4_writer import Fmp4HlsWriter

    writer = Fmp4HlsWriter(tmp_path, video=True, audio_channels=1, video_size=(64, 64),
                           segment_duration=2.0, max_segments=0,
                           started_at=datetime(2026, 1, 1, tzinfo=UTC))
    pipeline = RecordingPipeline(writer, has_video=True, has_audio=True, segment_duration=2.0,
                                 audio_channels=1, audio_codec="opus",
                                 request_keyframe=lambda: None)
    pipeline.set_video_timeline(0)
    pipeline.audio_timeline = TrackTimeline(0)
    stop_and_go_silent(pipeline, opus_packets, silent_packets, stop=5.0, end=9.5)
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    assert 4.95 <= writer.end_pts / 90000 <= 5.1
    assert 4.3 <= writer.trimmed <= 4.6
    init = (tmp_path / "init.mp4").stat().st_size
    assert (tmp_path / "output.mp4").stat().st_size == init + sum(s.bytes for s in writer.segments)


def test_silence_is_kept_where_there_is_no_picture_to_freeze(
        tmp_path: Path, opus_packets: list[bytes], silent_packets: list[bytes]) -> None:
    """Audio alone: a speaker who falls silent before leaving is no frozen tail."""
    writer = TsHlsWriter(tmp_path, Streams(video=False, audio=True), segment_duration=2.0,
                         max_segments=0, started_at=datetime(2026, 1, 1, tzinfo=UTC))
    pipeline = RecordingPipeline(writer, has_video=False, has_audio=True, segment_duration=2.0,
                                 audio_channels=1, audio_codec="aac",
                                 request_keyframe=lambda: None)
    pipeline.audio_timeline = TrackTimeline(0)
    for index in range(400):  # 4 s of tone, 4 s of silent packets
        packets = opus_packets if index < 200 else silent_packets
        pipeline.audio(AudioPacket(packets[index], index * 960, index * 0.02))
    writer.finish(pipeline.finish())
    assert check_structure(tmp_path).ok
    assert writer.trimmed == 0 and writer.end_pts / 90000 >= 7.9


def test_audio_that_ends_before_the_video_is_filled_to_its_end(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    """A browser's microphone ended 1.1 s before its camera (the page closing): the
    keyframe that came 0.5 s after the last sound, released to the writer without
    waiting any longer for audio, cut a last segment with no audio, which check (and
    players) refuse. The audio is filled with silence to the end of the video."""
    Feed(tmp_path).run(6.6, opus_packets, keyframe_every_two_seconds, audio_until=5.5)
    report = check_structure(tmp_path)
    assert report.ok, report.render()
    assert [round(s.extinf, 1) for s in report.segments] == [2.0, 2.0, 2.0, 0.6]
