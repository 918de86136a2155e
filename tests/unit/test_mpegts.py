import pytest

from publisher_hls_agent.hls import mpegts
from publisher_hls_agent.hls.mpegts import AUDIO_PID, PMT_PID, VIDEO_PID, Streams, TsMuxer

pytestmark = pytest.mark.unit


def packets(data: bytes) -> list[bytes]:
    assert len(data) % 188 == 0
    return [data[i:i + 188] for i in range(0, len(data), 188)]


def pid(packet: bytes) -> int:
    return ((packet[1] & 0x1F) << 8) | packet[2]


def payload(packet: bytes) -> bytes:
    control = (packet[3] >> 4) & 0x3
    start = 4 + (1 + packet[4] if control & 0x2 else 0)
    return packet[start:] if control & 0x1 else b""


def decode_timestamp(field: bytes) -> int:
    return (((field[0] >> 1) & 0x07) << 30 | field[1] << 22 | (field[2] >> 1) << 15
            | field[3] << 7 | field[4] >> 1)


def test_crc_matches_the_mpeg2_check_value() -> None:
    assert mpegts.crc32_mpeg2(b"123456789") == 0x0376E6E7


def test_tables_are_pat_then_pmt_with_valid_crc() -> None:
    pat, pmt = packets(TsMuxer(Streams(video=True, audio=True)).tables())
    assert (pid(pat), pid(pmt)) == (0, PMT_PID)
    for packet in (pat, pmt):
        assert packet[0] == 0x47 and packet[1] & 0x40  # sync, payload_unit_start
        section = payload(packet)[1:]
        length = ((section[1] & 0x0F) << 8) | section[2]
        assert mpegts.crc32_mpeg2(section[:3 + length]) == 0  # CRC over section is 0
    body = payload(pmt)[1:]
    assert body[12:17] == bytes([0x1B, 0xE1, 0x00, 0xF0, 0x00])  # H.264 on 0x100
    assert body[17:22] == bytes([0x0F, 0xE1, 0x01, 0xF0, 0x00])  # AAC on 0x101


def test_video_pes_carries_pts_dts_pcr_and_the_bytes_untouched() -> None:
    muxer = TsMuxer(Streams(video=True, audio=False))
    unit = b"\x00\x00\x00\x01\x65" + bytes(range(256)) * 3
    out = packets(muxer.video(unit, pts=2**33 + 1234, dts=2**33 + 1000, keyframe=True))
    first = out[0]
    assert pid(first) == VIDEO_PID and first[1] & 0x40
    assert first[5] & 0x50 == 0x50  # random access + PCR
    pes = b"".join(payload(p) for p in out)
    assert pes[:4] == b"\x00\x00\x01\xE0"
    assert decode_timestamp(pes[9:14]) == 1234  # wrapped at 2^33
    assert decode_timestamp(pes[14:19]) == 1000
    assert pes[19:] == unit
    assert [p[3] & 0x0F for p in out] == list(range(len(out)))


def test_continuity_counters_carry_on_across_calls() -> None:
    muxer = TsMuxer(Streams(video=True, audio=True))
    muxer.tables()
    first = packets(muxer.video(b"\x00\x00\x00\x01\x41" + bytes(400), 0, 0, False))
    second = packets(muxer.video(b"\x00\x00\x00\x01\x41" + bytes(10), 3000, 3000, False))
    counters = [p[3] & 0x0F for p in first + second]
    assert counters == list(range(len(counters)))
    audio = packets(muxer.audio(b"\xff\xf1" + bytes(100), 0))
    assert pid(audio[0]) == AUDIO_PID and audio[0][3] & 0x0F == 0


@pytest.mark.parametrize("size", range(150, 200))
def test_every_payload_size_fills_whole_packets(size: int) -> None:
    muxer = TsMuxer(Streams(video=False, audio=True))
    data = bytes([0xAB]) * size
    out = packets(muxer.audio(data, 90000))
    pes = b"".join(payload(p) for p in out)
    assert pes.endswith(data) and len(pes) == 14 + size


def test_a_program_needs_a_stream() -> None:
    with pytest.raises(ValueError, match="at least one stream"):
        Streams(video=False, audio=False)
