"""The repair cores: the streaming timestamp shifter, the playlist, durations.

Streams come from our own MPEG-TS muxer with timestamps placed across the 33-bit wrap;
every timestamp is read back with the independent reader in ``inspection/tsparse.py``.
"""

from __future__ import annotations

import random

import pytest

from publisher_hls_agent.hls.mpegts import Streams, TsMuxer
from publisher_hls_agent.hls.tsformat import PACKET_SIZE as PACKET
from publisher_hls_agent.hls.tsformat import WRAP
from publisher_hls_agent.inspection.durations import segment_duration
from publisher_hls_agent.inspection.playlist import PlaylistError
from publisher_hls_agent.inspection.tsparse import (
    Program,
    read_pcr_base,
    read_pes,
    read_timestamp,
)
from publisher_hls_agent.repair.playlist_fix import editable_playlist, needs_fixing
from publisher_hls_agent.repair.tsrewrite import (
    TimestampShifter,
    first_timestamp,
    timestamp_fields,
    write_pcr_base,
    write_timestamp,
)

pytestmark = pytest.mark.unit

IDR = b"\x00\x00\x00\x01\x65" + bytes(range(256)) * 20  # a few packets' worth


def stream(start: int, frames: int = 90) -> bytes:
    """Video at 30 fps and AAC-sized audio from ``start`` (90 kHz), wrapping at 2^33."""
    muxer = TsMuxer(Streams(video=True, audio=True))
    out = bytearray(muxer.tables())
    for index in range(frames):
        pts = (start + index * 3000) % WRAP
        out += muxer.video(IDR if index % 30 == 0 else IDR[:600], pts, pts, index % 30 == 0)
        out += muxer.audio(b"\xff\xf1" + bytes(200), (start + index * 3000 + 100) % WRAP)
    return bytes(out)


def timestamps(data: bytes) -> list[tuple[str, int]]:
    """Every timestamp in order, read by the shifter's field finder."""
    found = []
    for at in range(0, len(data) - PACKET + 1, PACKET):
        for kind, field in timestamp_fields(data, at):
            value = read_pcr_base(data, field) if kind in ("pcr", "opcr") else \
                read_timestamp(data, field)
            found.append((kind, value))
    return found


def shifted(data: bytes, offset: int, rng: random.Random) -> tuple[bytes, TimestampShifter]:
    shifter = TimestampShifter(offset)
    out = bytearray()
    position = 0
    while position < len(data):
        size = rng.choice([1, 7, 187, 188, 189, 4096, 100_000])
        out += shifter.feed(data[position:position + size])
        position += size
    out += shifter.finish()
    return bytes(out), shifter


def test_timestamp_fields_round_trip_and_keep_their_marker_bits() -> None:
    rng = random.Random(1)
    for _ in range(1000):
        value = rng.randrange(WRAP)
        field = bytearray([0x21, 0, 1, 0, 1])
        write_timestamp(field, 0, value)
        assert read_timestamp(field, 0) == value
        assert field[0] & 0xF1 == 0x21 and field[2] & 1 and field[4] & 1
        pcr = bytearray([0, 0, 0, 0, 0x7E, 0x55])  # reserved bits and extension around it
        write_pcr_base(pcr, 0, value)
        assert read_pcr_base(pcr, 0) == value and pcr[4] & 0x7F == 0x7E and pcr[5] == 0x55


@pytest.mark.parametrize("seed", range(8))
def test_shifting_preserves_every_difference_and_touches_nothing_else(seed: int) -> None:
    rng = random.Random(seed)
    start = rng.choice([WRAP - 3 * 90000, rng.randrange(WRAP), 0])
    data = stream(start)
    offset = rng.randrange(WRAP)
    out, shifter = shifted(data, offset, rng)
    assert len(out) == len(data) and not shifter.problems
    before, after = timestamps(data), timestamps(out)
    assert [k for k, _ in before] == [k for k, _ in after] and len(before) > 150
    assert all((b - a) % WRAP == (-offset) % WRAP for (_, a), (_, b) in zip(before, after,
                                                                              strict=True))
    changed = [i for i in range(len(data)) if data[i] != out[i]]
    assert all(any(f <= i % PACKET < f + 6 for f in range(4, 40)) for i in changed)
    # payloads and continuity counters: PES data read back identical
    assert [p.data for p in read_pes(data, Program())] == [p.data for p in read_pes(out,
                                                                                    Program())]


def test_a_stream_across_the_wrap_starts_at_zero_and_runs_on() -> None:
    data = stream(WRAP - 3 * 90000, frames=180)  # 6 s, crossing 2^33 at 3 s
    start = first_timestamp(data)
    assert start is not None and (WRAP - start) <= 3 * 90000 + 1
    out, _ = shifted(data, start, random.Random(0))
    video = [p.pts for p in read_pes(out, Program()) if p.stream_type == 0x1B]
    assert video[0] is not None and video[0] < 2 * 90000
    assert video == sorted(video) and video[-1] == video[0] + 179 * 3000


def test_garbage_and_truncation_are_reported_at_their_offset_and_passed_through() -> None:
    data = stream(1000)
    cut = 40 * PACKET + 17
    damaged = data[:cut] + b"\x00garbage!" * 11 + data[cut:] + data[:100]
    out, shifter = shifted(damaged, 1000, random.Random(3))
    assert len(out) == len(damaged)
    # packet 40 still starts with its sync byte; sync is lost where packet 41 should be
    assert f"no sync byte at byte {41 * PACKET}: 99 bytes" in shifter.problems[0]
    assert any("truncated packet at byte" in p for p in shifter.problems)
    assert out[-100:] == data[:100]  # the truncated tail, unchanged
    assert timestamps(out[-10 * PACKET - 100:-100])[0][1] < 90000 * 4  # rewritten after


def test_the_parsers_survive_fuzzing() -> None:
    rng = random.Random(42)
    base = stream(5000, frames=30)
    for _ in range(300):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 40)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        out, _ = shifted(bytes(data), rng.randrange(WRAP), rng)
        assert len(out) == len(data)
        first_timestamp(bytes(data))
        segment_duration(bytes(data))
    for _ in range(100):
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(2000)))
        assert len(shifted(noise, 1, rng)[0]) == len(noise)


def test_segment_duration_counts_video_frames() -> None:
    measured = segment_duration(stream(0, frames=60))
    assert measured == pytest.approx((2.0, 1 / 30))


PLAYLIST = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:18446743552
#EXTINF:2.000,first
a.ts
#EXTINF:-1,
b.ts
c.ts
#EXTINF:18446743552.0000,
d.ts
#EXT-X-ENDLIST
"""


def test_playlist_repair_keeps_every_other_line() -> None:
    playlist = editable_playlist(PLAYLIST)
    a, b, c, d = playlist.entries
    assert [i.duration for i in playlist.entries] == [2.0, -1.0, None, 18446743552.0]
    assert not needs_fixing(a, 2.01, 1 / 30)
    assert needs_fixing(a, 2.1, 1 / 30)
    assert all(needs_fixing(i, 2.0, 1 / 30) for i in (b, c, d))
    for item, seconds in ((b, 2.0), (c, 1.5), (d, 0.5)):
        playlist.set_duration(item, seconds)
    assert playlist.fit_target_duration() == 2
    assert playlist.render() == """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXTINF:2.000,first
a.ts
#EXTINF:2.000000,
b.ts
#EXTINF:1.500000,
c.ts
#EXTINF:0.500000,
d.ts
#EXT-X-ENDLIST
"""


@pytest.mark.parametrize("text", ["", "not a playlist", "#EXTM3U\n#EXT-X-ENDLIST\n",
                                  "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow.m3u8\n"])
def test_what_is_not_a_media_playlist_is_refused(text: str) -> None:
    with pytest.raises(PlaylistError):
        editable_playlist(text)
