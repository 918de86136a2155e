"""VP8 over RTP, and its transcoding to H.264: real VP8 from FFmpeg's libvpx encoder,
packetized as RFC 7741 says, read back by the reader a recording uses."""

from __future__ import annotations

import asyncio
import time

import av
import pytest
from aiortc.rtp import RtpPacket

from publisher_hls_agent.media import blank, h264, vp8
from publisher_hls_agent.media.codecs import VIDEO_CODECS
from publisher_hls_agent.media.track import RemoteTrack
from publisher_hls_agent.media.transcode import (
    EncodedPicture,
    EncoderSettings,
    TranscodeError,
    VideoTranscoder,
)
from publisher_hls_agent.media.units import AccessUnit, AudioPacket
from publisher_hls_agent.room import tracks
from publisher_hls_agent.room.tracks import TranscodingReader

from .encoded_video import FRAME_TICKS, REALTIME_VPX, encode

pytestmark = pytest.mark.unit

def vp8_frames(count: int, width: int = 320, height: int = 240,
               keyframe_every: int = 1000) -> list[bytes]:
    """Moving pictures encoded by libvpx, as a WebRTC sender would."""
    return encode("libvpx", count, width, height, keyframe_every=keyframe_every,
                  options=REALTIME_VPX)


def packetize(frame: bytes, picture_id: int, mtu: int = 400) -> list[bytes]:
    """RFC 7741 payloads with a 15-bit picture id: S=1 on the first, partition 0."""
    chunks = [frame[i:i + mtu] for i in range(0, len(frame), mtu)]
    header = bytes([0x80, 0x80 | (picture_id >> 8) & 0x7F, picture_id & 0xFF])
    return [bytes([header[0] | (0x10 if i == 0 else 0)]) + header[1:] + chunk
            for i, chunk in enumerate(chunks)]


def rtp_stream(frames: list[bytes], first_timestamp: int = 4_294_900_000) -> list[RtpPacket]:
    """The frames as RTP packets; the timestamps wrap around 2^32 on the way."""
    packets, sequence = [], 65_000
    for index, frame in enumerate(frames):
        payloads = packetize(frame, index)
        for n, payload in enumerate(payloads):
            packets.append(RtpPacket(payload_type=96, sequence_number=sequence & 0xFFFF,
                                     timestamp=(first_timestamp + index * FRAME_TICKS)
                                     & 0xFFFFFFFF,
                                     marker=n == len(payloads) - 1, payload=payload))
            sequence += 1
    return packets


# --- depacketizing -------------------------------------------------------------------

def test_descriptor_lengths() -> None:
    assert vp8.descriptor_length(b"\x10\xaa") == 1
    assert vp8.descriptor_length(b"\x90\x80\x05\xaa") == 3  # 7-bit picture id
    assert vp8.descriptor_length(b"\x90\x80\x85\x01\xaa") == 4  # 15-bit picture id
    assert vp8.descriptor_length(b"\x90\xf0\x85\x01\x02\x03\xaa") == 6  # I, L, T, K
    for truncated in (b"\x90", b"\x90\x80", b"\x10", b"\x90\xf0\x85\x01\x02\x03"):
        with pytest.raises(vp8.Vp8PayloadError):
            vp8.descriptor_length(truncated)


def test_frames_come_back_whole_with_their_keyframe_size() -> None:
    frames = vp8_frames(3)
    for index, frame in enumerate(frames):
        payloads = packetize(frame, index, mtu=100)
        assert vp8.starts_frame(payloads[0]) and not any(map(vp8.starts_frame, payloads[1:]))
        assert vp8.depacketize(payloads) == frame
    assert vp8.keyframe_size(frames[0]) == (320, 240)
    assert vp8.is_keyframe(frames[0]) and not vp8.is_keyframe(frames[1])
    assert vp8.keyframe_size(frames[1]) is None
    with pytest.raises(vp8.Vp8PayloadError):
        vp8.depacketize(packetize(frames[0], 0, mtu=100)[1:])


def test_the_sfus_blank_keyframe_is_recognised() -> None:
    assert blank.is_blank_vp8_keyframe(blank.VP8_BLANK_KEYFRAME + b"trailer")
    assert vp8.keyframe_size(blank.VP8_BLANK_KEYFRAME) == (8, 8)
    assert not blank.is_blank_vp8_keyframe(vp8_frames(1)[0])


# --- transcoding ---------------------------------------------------------------------

def decode_h264(units: list[bytes]) -> list[av.VideoFrame]:
    decoder = av.CodecContext.create("h264", "r")
    return [f for unit in units for f in decoder.decode(av.Packet(unit))]


def test_every_frame_becomes_one_h264_picture_with_its_timestamp() -> None:
    transcoder = VideoTranscoder("vp8")
    base = 1 << 33  # unwrapped RTP time is 64-bit
    out = []
    for index, frame in enumerate(vp8_frames(45)):
        if index == 30:
            transcoder.force_keyframe()
        out.extend(transcoder.transcode(frame, base + index * FRAME_TICKS))
    assert [p.rtp_timestamp for p in out] == [base + i * FRAME_TICKS for i in range(45)]
    assert [i for i, p in enumerate(out) if p.keyframe] == [0, 30]
    assert all(p.has_parameter_sets for p in out if p.keyframe)
    idr = h264.describe_access_unit(h264.split_annexb(out[30].data))
    assert idr == (True, True, True)
    pictures = decode_h264([p.data for p in out])
    assert len(pictures) == 45 and {(p.width, p.height) for p in pictures} == {(320, 240)}


def test_a_new_picture_size_restarts_the_encoder_on_an_idr() -> None:
    transcoder = VideoTranscoder("vp8")
    small, large = vp8_frames(5, 320, 240), vp8_frames(5, 640, 360)
    out = [p for i, f in enumerate(small + large)
           for p in transcoder.transcode(f, i * FRAME_TICKS)]
    assert [i for i, p in enumerate(out) if p.keyframe] == [0, 5]
    sizes = [(p.width, p.height) for p in decode_h264([p.data for p in out])]
    assert sizes == [(320, 240)] * 5 + [(640, 360)] * 5


def test_with_a_published_size_lower_layers_are_scaled_into_one_stream() -> None:
    """A subscription starts on a low simulcast layer: no new encoder at the switch."""
    transcoder = VideoTranscoder("vp8", (640, 360))
    small, large = vp8_frames(5, 320, 240), vp8_frames(5, 640, 360)
    out = [p for i, f in enumerate(small + large)
           for p in transcoder.transcode(f, i * FRAME_TICKS)]
    assert [i for i, p in enumerate(out) if p.keyframe] == [0]
    assert [p.rtp_timestamp for p in out] == [i * FRAME_TICKS for i in range(10)]
    sizes = [(p.width, p.height) for p in decode_h264([p.data for p in out])]
    assert sizes == [(640, 360)] * 10


def test_a_damaged_frame_is_an_error_not_a_crash() -> None:
    transcoder = VideoTranscoder("vp8")
    with pytest.raises(TranscodeError):
        transcoder.transcode(b"\x00\x01\x02" + bytes(50), 0)


# --- the reader: RTP in, H.264 access units out, off the event loop -------------------

class Consumer:
    def __init__(self, expected: int) -> None:
        self.units: list[AccessUnit] = []
        self.pending: list[bool] = []  # what on_video_pending said, in turn
        self.expected = expected
        self.all_came = asyncio.Event()

    def on_video(self, track_sid: str, unit: AccessUnit) -> None:
        self.units.append(unit)
        if len(self.units) >= self.expected:
            self.all_came.set()

    def on_video_pending(self, track_sid: str, pending: bool) -> None:
        self.pending.append(pending)

    def on_audio(self, track_sid: str, packet: AudioPacket) -> None: ...
    def on_track_started(self, track: RemoteTrack) -> None: ...
    def on_track_ended(self, track_sid: str) -> None: ...
    def on_track_unsupported(self, track: RemoteTrack, reason: str) -> None: ...


async def read(packets: list[RtpPacket], expected: int, asks: list[int] | None = None,
               step: float = 0.02, published: tuple[int, int] = (0, 0),
               ) -> tuple[TranscodingReader, Consumer]:
    consumer = Consumer(expected)
    asks = asks if asks is not None else []
    reader = TranscodingReader(RemoteTrack("TR_v", "video", "video/VP8", *published), consumer,
                               VIDEO_CODECS["video/vp8"],
                               lambda: asks.append(len(consumer.units)))
    for index, packet in enumerate(packets):
        reader.on_rtp(packet, arrival=1000.0 + index * step)
    await asyncio.wait_for(consumer.all_came.wait(), 20)
    await asyncio.sleep(0.1)  # nothing more should come
    reader.on_bye()
    return reader, consumer


async def test_the_reader_delivers_h264_on_the_loop_in_order() -> None:
    frames = vp8_frames(40)
    reader, consumer = await read(rtp_stream(frames), 40)
    stamps = [u.rtp_timestamp for u in consumer.units]
    assert stamps == [stamps[0] + i * FRAME_TICKS for i in range(40)]
    assert stamps[-1] > 1 << 32  # unwrapped across the wrap
    assert consumer.units[0].keyframe and consumer.units[0].has_parameter_sets
    assert not any(u.after_loss for u in consumer.units)
    assert reader.stats.frames == 40 and reader.stats.keyframes == 1
    assert len(decode_h264([u.data for u in consumer.units])) == 40


async def test_after_a_loss_frames_wait_for_the_publishers_keyframe() -> None:
    frames = vp8_frames(30, keyframe_every=20)  # keyframes at 0 and 20
    packets = rtp_stream(frames)
    lost_frame = 10
    first_of = [i for i, p in enumerate(packets) if vp8.starts_frame(p.payload)]
    del packets[first_of[lost_frame]:first_of[lost_frame + 1]]
    asks: list[int] = []
    # packets far enough apart for the reorder window to pass before frame 20
    reader, consumer = await read(packets, 20, asks, step=0.2)
    assert len(consumer.units) == 20  # frames 0-9, then 20-29: 11-19 cannot be decoded
    assert reader.stats.skipped_frames >= 9
    assert asks, "the publisher was not asked for a keyframe"
    assert len(decode_h264([u.data for u in consumer.units])) == 20


async def test_the_sfus_blank_frames_are_not_transcoded() -> None:
    frames = vp8_frames(5)
    blank_frames = [blank.VP8_BLANK_KEYFRAME] * 3
    reader, consumer = await read(rtp_stream(frames + blank_frames), 5)
    assert len(consumer.units) == 5 and reader.stats.blank_frames == 3


async def test_a_simulcast_track_begins_on_its_top_layer() -> None:
    # The SFU forwards the lowest layer first, then switches up at the top one's keyframe.
    frames = vp8_frames(10, 160, 96) + vp8_frames(10, 320, 192)
    reader, consumer = await read(rtp_stream(frames), 10, published=(320, 192))
    stamps = [u.rtp_timestamp for u in consumer.units]
    assert stamps == [stamps[0] + i * FRAME_TICKS for i in range(10)]
    assert stamps[0] == 4_294_900_000 + 10 * FRAME_TICKS  # the top layer's keyframe
    assert reader.stats.frames == 10 and reader.stats.keyframes == 1


async def test_a_track_joined_between_keyframes_asks_the_publisher_for_one() -> None:
    """The SFU may forward delta frames first, and the recorder's keyframe request has no
    transcoder to go to yet: both must reach the publisher (VP8 and VP9 encoders send no
    periodic keyframes, so nothing else would start the recording)."""
    frames = vp8_frames(40, keyframe_every=25)[5:]  # from a delta frame; a keyframe at 20
    consumer, asks = Consumer(15), []
    reader = TranscodingReader(RemoteTrack("TR_v", "video", "video/VP8", 320, 240), consumer,
                               VIDEO_CODECS["video/vp8"], lambda: asks.append(True))
    reader.request_keyframe()
    assert asks == [True]
    for index, packet in enumerate(rtp_stream(frames)):
        reader.on_rtp(packet, arrival=1000.0 + index * 0.02)
    await asyncio.wait_for(consumer.all_came.wait(), 20)
    assert len(asks) > 1  # the delta frames asked too (every second)
    assert consumer.units[0].keyframe and len(consumer.units) == 15
    reader.on_bye()


def slow_transcoder(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Every frame takes ``seconds`` more to transcode: a machine busy with other work.
    (In this process: the reader's backlog is what these tests are about.)"""
    class Slow(VideoTranscoder):
        def transcode(self, frame: bytes, rtp_timestamp: int) -> list[EncodedPicture]:
            time.sleep(seconds)
            return super().transcode(frame, rtp_timestamp)

    monkeypatch.setattr(tracks, "new_transcoder", Slow)


def fed_at_once(consumer: Consumer, count: int) -> TranscodingReader:
    """A reader given ``count`` frames far faster than they can be transcoded."""
    reader = TranscodingReader(RemoteTrack("TR_v", "video", "video/VP8"), consumer,
                               VIDEO_CODECS["video/vp8"], lambda: None)
    for index, packet in enumerate(rtp_stream(vp8_frames(count))):
        reader.on_rtp(packet, arrival=1000.0 + index * 0.001)
    return reader


async def test_a_transcoder_that_falls_behind_loses_no_frame(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy machine: the thread takes longer per frame than frames take to come.
    They all come out, late, in order; the track ends for the consumer only after."""
    slow_transcoder(monkeypatch, 0.01)
    ended: list[str] = []
    consumer = Consumer(90)
    consumer.on_track_ended = ended.append  # type: ignore[method-assign]
    reader = fed_at_once(consumer, 90)
    assert reader.backlog > 60  # what the thread would once have dropped
    reader.on_bye()
    assert not ended and not reader.ended  # not before the backlog went through
    assert await reader.caught_up(within=30)
    assert ended == ["TR_v"]
    stamps = [u.rtp_timestamp for u in consumer.units]
    assert stamps == [stamps[0] + i * FRAME_TICKS for i in range(90)]
    assert consumer.pending == [True, False]  # from the first frame in to the last out
    assert consumer.units[-1].delay > 0.5 and reader.most_delay == consumer.units[-1].delay


async def test_keyframes_come_on_a_cadence_of_source_time_however_far_behind(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A keyframe asked for on the loop lands on whatever frame the thread takes next,
    seconds of media later on a busy machine. The thread forces them itself every
    ``keyframe_every`` of source media since the last one, where segments are cut,
    however far behind the transcoder and the loop are; one asked for moves the next."""
    slow_transcoder(monkeypatch, 0.005)
    consumer = first_out = Consumer(1)
    reader = TranscodingReader(RemoteTrack("TR_v", "video", "video/VP8"), consumer,
                               VIDEO_CODECS["video/vp8"], lambda: None,
                               settings=EncoderSettings(keyframe_every=20 * FRAME_TICKS / 90000))
    packets = rtp_stream(vp8_frames(60))
    fourth = [i for i, p in enumerate(packets) if vp8.starts_frame(p.payload)][3]
    for index, packet in enumerate(packets):
        if index == fourth:  # three frames in: once one is out, one is asked for
            await asyncio.wait_for(first_out.all_came.wait(), 20)
            reader.request_keyframe()  # lands on the next frame the thread takes
        reader.on_rtp(packet, arrival=1000.0 + index * 0.001)
    assert reader.backlog > 30
    reader.on_bye()
    assert await reader.caught_up(within=30)
    first = consumer.units[0].rtp_timestamp
    keyframes = [(u.rtp_timestamp - first) // FRAME_TICKS for u in consumer.units if u.keyframe]
    asked = keyframes[1]
    assert 0 < asked < 20
    assert keyframes == [0, asked, asked + 20, asked + 40]


async def test_a_backlog_not_through_in_time_is_given_up_and_said(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    slow_transcoder(monkeypatch, 0.05)
    reader = fed_at_once(Consumer(1000), 60)
    reader.on_bye()
    assert not await reader.caught_up(within=0.3)
    assert reader.ended
    assert "frames behind" in caplog.text and "not recorded" in caplog.text


async def test_a_rejoined_sessions_reader_holds_its_pictures_until_the_last_one_is_through(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A session broke with the transcoder behind; the rejoined session's reader of the
    track transcodes what comes, but its pictures wait until the last session's backlog
    went through: no frame lost, none overtaking an older one."""
    slow_transcoder(monkeypatch, 0.01)
    consumer = Consumer(1000)
    ended: list[str] = []
    consumer.on_track_ended = ended.append  # type: ignore[method-assign]
    before = fed_at_once(consumer, 40)
    before.on_bye()
    assert before.delivering
    after = TranscodingReader(RemoteTrack("TR_v", "video", "video/VP8"), consumer,
                              VIDEO_CODECS["video/vp8"], lambda: None)
    after.hold()
    for index, packet in enumerate(rtp_stream(vp8_frames(20), first_timestamp=10_000)):
        after.on_rtp(packet, arrival=2000.0 + index * 0.001)
    assert await before.caught_up(within=30)
    assert ended == ["TR_v"] and not before.delivering
    assert len(consumer.units) == 40  # the first session's, and nothing of the second yet
    await asyncio.sleep(0.5)  # the second's transcoder is through too, its pictures held
    assert len(consumer.units) == 40
    after.release()
    for _ in range(100):
        if len(consumer.units) == 60:
            break
        await asyncio.sleep(0.05)
    stamps = [u.rtp_timestamp for u in consumer.units]
    assert stamps[40:] == [10_000 + i * FRAME_TICKS for i in range(20)], stamps[38:]
    after.on_bye()
    assert await after.caught_up(within=10)


async def test_keyframes_come_from_the_last_sessions_transcoder_while_it_catches_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """After a rejoin the recording's pictures come from the broken session's backlog
    for a while: asked for a keyframe (a segment boundary), that transcoder makes it, or
    no segment ends until the backlog is through."""
    from publisher_hls_agent.room.client import RoomClient

    slow_transcoder(monkeypatch, 0.01)
    consumer = Consumer(60)
    before = fed_at_once(consumer, 60)
    before.on_bye()
    client = RoomClient("ws://unused", "token", "someone", consumer)
    client._ended_readers.append(before)
    await asyncio.sleep(0.15)  # a few pictures out
    await client.request_keyframe("TR_v")
    assert await before.caught_up(within=30)
    keyframes = [index for index, unit in enumerate(consumer.units) if unit.keyframe]
    assert len(keyframes) >= 2 and keyframes[1] < 40, keyframes
