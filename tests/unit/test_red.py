"""RED (RFC 2198) payloads as LiveKit and browsers send Opus."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtp import RtpPacket

from publisher_hls_agent.media.red import RedPayloadError, split_red
from publisher_hls_agent.media.track import RemoteTrack
from publisher_hls_agent.media.units import AudioPacket
from publisher_hls_agent.room.tracks import OpusReader

pytestmark = pytest.mark.unit


def red(blocks: list[tuple[int, bytes]], primary: bytes, pt: int = 111) -> bytes:
    header = b"".join(struct.pack("!BI", 0x80 | pt, (offset << 10 | len(data)) << 8)[:4]
                      for offset, data in blocks)
    return header + bytes([pt]) + b"".join(data for _, data in blocks) + primary


def test_blocks_come_oldest_first_with_the_primary_last() -> None:
    payload = red([(1920, b"old"), (960, b"newer")], b"primary")
    assert split_red(payload) == [(1920, b"old"), (960, b"newer"), (0, b"primary")]


def test_a_packet_without_redundancy_is_just_its_primary() -> None:
    assert split_red(bytes([111]) + b"opus") == [(0, b"opus")]


def test_empty_redundant_blocks_are_skipped() -> None:
    assert split_red(red([(960, b"")], b"p")) == [(0, b"p")]


@pytest.mark.parametrize("cut", range(0, 13))
def test_truncated_payloads_are_errors(cut: int) -> None:
    payload = red([(960, b"abcdef")], b"p")[:cut]  # header 5 bytes, data 6, primary 1
    if cut >= 11:
        split_red(payload)  # the whole redundant block is there: only the primary is short
        return
    with pytest.raises(RedPayloadError):
        split_red(payload)


class Consumer:
    def __init__(self) -> None:
        self.audio: list[tuple[int, bytes]] = []

    def on_audio(self, track_sid: str, packet: AudioPacket) -> None:
        self.audio.append((packet.rtp_timestamp, packet.data))


def red_packet(seq: int, frames: list[bytes]) -> RtpPacket:
    """The RED packet a sender makes at frame ``seq``: the two before it as copies."""
    ts = 1000 + 960 * seq
    copies = [(960 * back, frames[seq - back]) for back in (2, 1) if seq - back >= 0]
    return RtpPacket(payload_type=63, sequence_number=seq, timestamp=ts,
                     payload=red(copies, frames[seq]))


def test_the_copies_in_red_fill_the_frames_of_lost_packets() -> None:
    frames = [bytes([0xF8, n]) * 10 for n in range(10)]
    consumer = Consumer()
    reader = OpusReader(RemoteTrack("TR_a", "audio", "audio/red"), consumer)  # type: ignore[arg-type]
    for seq in (0, 1, 2, 5, 6, 7, 9):  # 3 and 4 lost (5 carries both), 8 lost (9 carries it)
        reader.on_red(red_packet(seq, frames), arrival=seq * 0.02)
    assert consumer.audio == [(1000 + 960 * n, frames[n]) for n in range(10)]
    assert reader.red_recovered == 3 and reader.packets_missing == 3 and reader.late_packets == 0


def test_plain_opus_gaps_are_counted_as_missing() -> None:
    consumer = Consumer()
    reader = OpusReader(RemoteTrack("TR_a", "audio", "audio/opus"), consumer)  # type: ignore[arg-type]
    for seq in (0, 1, 4):
        reader.on_rtp(RtpPacket(payload_type=111, sequence_number=seq, timestamp=960 * seq,
                                payload=b"\xf8opus"), arrival=0.0)
    assert len(consumer.audio) == 3 and reader.packets_missing == 2
