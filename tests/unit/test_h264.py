import contextlib

import pytest

from publisher_hls_agent.media import h264
from publisher_hls_agent.media.h264 import H264PayloadError

from .encoded_video import encode
from .h264_samples import IDR, PPS, SECOND_SLICE, SLICE, SPS, packetize

pytestmark = pytest.mark.unit


def test_keyframe_round_trips_through_stap_a_and_fu_a() -> None:
    payloads = packetize([SPS, PPS, IDR], mtu=500)
    assert payloads[0][0] & 0x1F == h264.STAP_A
    assert all(p[0] & 0x1F == h264.FU_A for p in payloads[1:])
    nals = h264.depacketize(payloads)
    assert nals == [SPS, PPS, IDR]
    assert h264.describe_access_unit(nals) == (True, True, True)


def test_single_nal_payloads() -> None:
    assert h264.depacketize([SLICE]) == [SLICE]
    assert h264.describe_access_unit([SLICE]) == (False, False, False)


def test_annexb_round_trip() -> None:
    data = h264.to_annexb([SPS, PPS, IDR])
    assert data.startswith(b"\x00\x00\x00\x01\x67")
    assert h264.split_annexb(data) == [SPS, PPS, IDR]
    assert h264.split_annexb(b"\x00\x00\x01" + SLICE) == [SLICE]


@pytest.mark.parametrize(("payload", "message"), [
    (b"", "empty H.264 payload"),
    (b"\x80\x00", "forbidden_zero_bit"),
    (bytes([0x1F, 0]), "unsupported H.264 packetization type 31"),
    (bytes([0x19, 0]), "unsupported H.264 packetization type 25"),
    (bytes([0x18]), "STAP-A without NAL units"),
    (bytes([0x18, 0x00]), "STAP-A truncated: size field at byte 1"),
    (bytes([0x18, 0x00, 0x00]), "STAP-A NAL unit of size 0 at byte 1"),
    (bytes([0x18, 0x00, 0x05, 0x67, 0x42]),
     "STAP-A truncated: NAL unit of 5 bytes at byte 3, only 2 left"),
    (bytes([0x1C]), "FU-A truncated: 1 bytes, need at least 3"),
    (bytes([0x1C, 0x85]), "FU-A truncated: 2 bytes, need at least 3"),
    (bytes([0x1C, 0xC5, 0x00]), "both start and end"),
])
def test_malformed_payloads_give_a_clear_error(payload: bytes, message: str) -> None:
    with pytest.raises(H264PayloadError, match=message):
        h264.parse_payload(payload)


def test_every_truncation_of_a_stap_a_fails_cleanly() -> None:
    stap = packetize([SPS, PPS])[0]
    for length in range(1, len(stap)):
        try:
            nals, _, _ = h264.parse_payload(stap[:length])
        except H264PayloadError:
            continue
        # A cut that falls exactly between aggregated units is a valid, shorter STAP-A.
        assert b"".join(nals) in (SPS, b"")


def test_fragments_that_do_not_join_up_are_rejected() -> None:
    fragments = packetize([IDR], mtu=600)
    assert len(fragments) >= 3
    with pytest.raises(H264PayloadError, match="without its start"):
        h264.depacketize(fragments[1:])
    with pytest.raises(H264PayloadError, match="ends inside"):
        h264.depacketize(fragments[:-1])
    with pytest.raises(H264PayloadError, match="not terminated"):
        h264.depacketize([fragments[0], SLICE])
    with pytest.raises(H264PayloadError, match="start inside"):
        h264.depacketize([fragments[0], fragments[0]])


def test_garbage_never_crashes() -> None:
    import random

    rng = random.Random(7)
    for _ in range(5000):
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12)))
        with contextlib.suppress(H264PayloadError):
            h264.depacketize([payload])
        h264.starts_access_unit(payload)


def test_access_unit_start_detection() -> None:
    assert h264.starts_access_unit(SPS)
    assert h264.starts_access_unit(packetize([SPS, PPS])[0])
    assert h264.starts_access_unit(SLICE)
    assert not h264.starts_access_unit(SECOND_SLICE)
    fragments = packetize([IDR], mtu=600)
    assert h264.starts_access_unit(fragments[0])
    assert not h264.starts_access_unit(fragments[1])
    assert not h264.starts_access_unit(b"\x65")



def test_keyframe_starts_are_told_from_the_first_packet() -> None:
    assert h264.starts_keyframe(SPS)
    assert h264.starts_keyframe(IDR)  # an IDR's first slice sent without its SPS
    assert not h264.starts_keyframe(SLICE) and not h264.starts_keyframe(PPS)
    stap = bytes([24]) + len(SPS).to_bytes(2, "big") + SPS + len(PPS).to_bytes(2, "big") + PPS
    assert h264.starts_keyframe(stap)
    fu_start = bytes([28, 0x80 | 5]) + IDR[1:20]
    fu_middle = bytes([28, 5]) + IDR[20:40]
    assert h264.starts_keyframe(fu_start) and not h264.starts_keyframe(fu_middle)
    assert not h264.starts_keyframe(bytes([28, 0x80 | 1]) + SLICE[1:20])
    assert not any(h264.starts_keyframe(b) for b in (b"", b"\x1c", bytes([24, 0, 1])))


@pytest.mark.parametrize(("size", "options"), [
    ((1280, 720), {"profile": "high"}),
    ((1920, 1080), {"profile": "high"}),  # 1088 coded, cropped to 1080
    ((854, 480), {"profile": "main"}),  # odd width: cropped on the right
    ((320, 180), {"profile": "baseline"}),
    ((640, 360), {"profile": "high444", "x264-params": "cqm=jvt"}),  # 4:4:4, scaling lists
    ((720, 576), {"x264-params": "interlaced=1"}),  # fields: frame_mbs_only is 0
])
def test_sps_size_reads_what_an_encoder_wrote(size: tuple[int, int],
                                              options: dict[str, str]) -> None:
    pixel_format = "yuv444p" if options.get("profile") == "high444" else "yuv420p"
    encoded = encode("libx264", 1, *size, options=options, pixel_format=pixel_format)
    sps = next(n for n in h264.split_annexb(encoded[0]) if h264.nal_type(n) == h264.NAL_SPS)
    assert h264.sps_size(sps) == size


def test_sps_size_of_a_damaged_sps_is_none() -> None:
    encoded = encode("libx264", 1, 1280, 720)
    sps = next(n for n in h264.split_annexb(encoded[0]) if h264.nal_type(n) == h264.NAL_SPS)
    assert h264.sps_size(sps[:5]) is None
    assert h264.sps_size(b"\x67") is None
