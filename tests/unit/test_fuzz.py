"""Every parser against mutated input: it returns, or raises its own error, in bounded
time, and ``check``/``fix`` on corrupted recordings write nothing outside their target.

Seeded from data made as the other unit tests make it (real encoder output packetized
per the RFCs, our own TS and fMP4 segments). A short run is part of ``scripts/test``;
the long one is ``FUZZ_INPUTS=1000000 FUZZ_FILES=20000 scripts/test -m unit -k fuzz``
(inputs per parser; corrupted recordings for check and fix).
"""

from __future__ import annotations

import contextlib
import os
import random
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from publisher_hls_agent.hls import fmp4
from publisher_hls_agent.hls.check import CheckError, check_recording
from publisher_hls_agent.hls.fmp4_video import video_config, video_sample
from publisher_hls_agent.inspection.mp4parse import Mp4Error, read_fragments, read_init
from publisher_hls_agent.inspection.tsparse import TsError, read_pes
from publisher_hls_agent.media import av1, h264, vp8, vp9
from publisher_hls_agent.media.assembler import FrameAssembler
from publisher_hls_agent.media.bits import BitsExhausted
from publisher_hls_agent.media.nack import NackList, nack_packets
from publisher_hls_agent.media.red import RedPayloadError, split_red
from publisher_hls_agent.repair.fix import FixError, fix_recording

from .encoded_video import REALTIME_VPX, encode
from .h264_samples import IDR, PPS, SLICE, SPS, packetize
from .test_check import make_recording
from .test_red import red
from .test_vp8_transcode import packetize as vp8_packetize
from .test_vp9_av1 import av1_packetize, vp9_packetize

pytestmark = pytest.mark.unit

INPUTS = int(os.environ.get("FUZZ_INPUTS", "5000"))  # per parser
# corrupted recordings for check and fix (each a folder of files)
FILE_INPUTS = int(os.environ.get("FUZZ_FILES", str(max(30, INPUTS // 100))))
SLOWEST = 1.0  # seconds one input may take


def mutations(seeds: list[bytes], count: int, seed: int) -> Iterator[bytes]:
    """``count`` inputs: bytes flipped, set to edge values, cut, repeated, spliced."""
    rng = random.Random(seed)
    for _ in range(count):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 6)):
            kind = rng.randrange(6)
            at = rng.randrange(len(data) + 1)
            if kind == 0 and data:
                data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
            elif kind == 1 and data:
                data[min(at, len(data) - 1)] = rng.choice((0, 0x7F, 0x80, 0xFF, rng.randrange(256)))
            elif kind == 2:
                del data[at:at + rng.randrange(1, 64)]
            elif kind == 3:
                data[at:at] = data[at:at + rng.randrange(1, 64)]
            elif kind == 4:
                data[at:at] = struct.pack("!I", rng.choice((0, 1, 0x7FFFFFFF, 0xFFFFFFFF)))
            else:
                other = rng.choice(seeds)
                data = data[:at] + other[rng.randrange(len(other) + 1):]
        yield bytes(data)


def survive(parse: Callable[[bytes], object], inputs: Iterator[bytes],
            allowed: tuple[type[Exception], ...]) -> int:
    """Feed every input; only ``allowed`` errors, none slower than SLOWEST. The count."""
    count = 0
    for data in inputs:
        start = time.perf_counter()
        with contextlib.suppress(allowed):
            parse(data)
        elapsed = time.perf_counter() - start
        assert elapsed < SLOWEST, f"{elapsed:.1f} s on {data[:64]!r}"
        count += 1
    return count


H264_SEEDS = [*packetize([SPS, PPS, IDR], mtu=300), *packetize([SLICE], mtu=100),
              *packetize([SPS, PPS, IDR], mtu=300, aggregate=False)]


def test_h264_payloads() -> None:
    def parse(data: bytes) -> None:
        h264.starts_access_unit(data)
        h264.starts_keyframe(data)
        nals = h264.depacketize([data[: len(data) // 2], data[len(data) // 2:]])
        h264.describe_access_unit(nals)

    assert survive(parse, mutations(H264_SEEDS, INPUTS, 1), (h264.H264PayloadError,)) == INPUTS


@pytest.mark.parametrize("codec", ["vp8", "vp9", "av1"])
def test_vp8_vp9_av1_payloads(codec: str) -> None:
    if codec == "vp8":
        frames = encode("libvpx", 3, options=REALTIME_VPX)
        seeds = [p for i, f in enumerate(frames) for p in vp8_packetize(f, i)]
        module, errors = vp8, (vp8.Vp8PayloadError,)
    elif codec == "vp9":
        frames = encode("libvpx-vp9", 3, options=REALTIME_VPX)
        seeds = [p for i, f in enumerate(frames) for p in vp9_packetize(f, i)]
        module, errors = vp9, (vp9.Vp9PayloadError, BitsExhausted)
    else:
        frames = encode("libsvtav1", 3, options={"preset": "12"})
        seeds = [p for f in frames for p in av1_packetize(f)]
        module, errors = av1, (av1.Av1PayloadError, BitsExhausted)

    def parse(data: bytes) -> None:
        module.starts_frame(data)
        whole = module.depacketize([data])
        module.is_keyframe(whole)
        if codec == "vp9":
            vp9.keyframe_info(whole)
        if codec == "av1" and (found := av1.sequence_header(whole)) is not None:
            av1.parse_sequence_header(found[1])

    assert survive(parse, mutations(seeds + frames, INPUTS, 2), errors) == INPUTS


def test_red_payloads() -> None:
    seeds = [red([(1920, b"a" * 40), (960, b"b" * 30)], b"c" * 50), red([], b"x" * 10)]
    assert survive(split_red, mutations(seeds, INPUTS, 3), (RedPayloadError,)) == INPUTS


def test_mpeg_ts(tmp_path: Path) -> None:
    make_recording(tmp_path, 2.0)
    seeds = [(tmp_path / "segment00000.ts").read_bytes()[:188 * 40]]
    assert survive(lambda data: list(read_pes(data)), mutations(seeds, INPUTS, 4),
                   (TsError,)) == INPUTS


def test_fmp4_boxes() -> None:
    key = h264.to_annexb([SPS, PPS, IDR])
    init = fmp4.init_segment(video_config("h264", key, (320, 240)), fmp4.AudioConfig(2))
    sample = video_sample("h264", key)
    segment = fmp4.media_segment(1, [
        fmp4.TrackRun(1, 0, [(3000, len(sample), fmp4.sample_flags(True))], [sample]),
        fmp4.TrackRun(2, 0, [(960, 3, 0)] * 2, [b"\xf8\xff\xfe"] * 2)])

    def parse(data: bytes) -> None:
        read_init(data)
        list(read_fragments(data))

    assert survive(parse, mutations([init, segment], INPUTS, 5), (Mp4Error,)) == INPUTS


def test_the_receive_path_cores() -> None:
    """The assembler and the NACK list take any sequence of packets (numbers, stamps,
    markers, payloads chosen by the sender) without an error or a slow step."""
    rng = random.Random(6)
    assembler = FrameAssembler(h264.starts_access_unit, starts_keyframe=h264.starts_keyframe)
    nacks = NackList()
    payloads = list(mutations(H264_SEEDS, 256, 7))
    seq, ts, now = 0, 0, 0.0
    for _ in range(INPUTS * 4):
        seq = (seq + rng.choice((1, 1, 1, 2, 0, -3, 40, 30_000))) & 0xFFFF
        ts = (ts + rng.choice((0, 0, 3000, -3000, 1 << 31))) & 0xFFFFFFFF
        now += rng.random() * 0.02
        start = time.perf_counter()
        assembler.push(seq, ts, rng.random() < 0.2, rng.choice(payloads), now)
        nacks.received(seq + (1 << 16) * (seq < 100), now)
        nack_packets(1, 2, nacks.due(now))
        assert time.perf_counter() - start < SLOWEST


def corrupted_recordings(tmp_path: Path, count: int, seed: int) -> Iterator[Path]:
    (tmp_path / "good").mkdir(parents=True)
    make_recording(tmp_path / "good", 6.0)
    files = {p.name: p.read_bytes() for p in (tmp_path / "good").iterdir() if p.is_file()}
    rng = random.Random(seed)
    for index in range(count):
        folder = tmp_path / f"bad{index}"
        folder.mkdir()
        victims = rng.sample(sorted(files), rng.randrange(1, 3))
        for name, data in files.items():
            if name in victims:
                data = next(mutations([data], 1, rng.randrange(1 << 30)))
            (folder / name).write_bytes(data)
        yield folder


def test_check_on_corrupted_recordings(tmp_path: Path) -> None:
    for folder in corrupted_recordings(tmp_path, FILE_INPUTS, 8):
        start = time.perf_counter()
        with contextlib.suppress(CheckError):
            check_recording(folder)
        assert time.perf_counter() - start < SLOWEST * 5, folder


def test_fix_on_corrupted_recordings_writes_only_into_its_target(tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    outputs.mkdir()
    for folder in corrupted_recordings(tmp_path / "in", FILE_INPUTS, 9):
        inputs_before = sorted(folder.rglob("*"))
        around_before = set(tmp_path.iterdir()) | set(outputs.iterdir())
        output = outputs / folder.name
        with contextlib.suppress(FixError):
            fix_recording(folder, output)
        assert sorted(folder.rglob("*")) == inputs_before  # the input is left as it was
        assert set(tmp_path.iterdir()) | set(outputs.iterdir()) <= around_before | {output}
        if output.exists():
            assert not any(p.name.endswith(".tmp") for p in output.rglob("*"))
