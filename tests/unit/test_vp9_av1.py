"""VP9 and AV1 out of RTP, from frames real encoders made (libvpx, SVT-AV1 through PyAV),
packetized here the way the RTP payload formats say; and their fMP4 sample entries, read
back by FFmpeg."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from publisher_hls_agent.hls import fmp4
from publisher_hls_agent.hls.fmp4_video import video_config, video_sample, vp9_level
from publisher_hls_agent.media import av1, vp9
from publisher_hls_agent.media.assembler import FrameAssembler
from publisher_hls_agent.media.bits import leb128, read_leb128

from .encoded_video import FRAME_TICKS, REALTIME_VPX, encode

pytestmark = pytest.mark.unit

def vp9_frames(count: int, width: int = 320, height: int = 240) -> list[bytes]:
    return encode("libvpx-vp9", count, width, height, options=REALTIME_VPX)


def av1_units(count: int) -> list[bytes]:
    return encode("libsvtav1", count,
                  options={"preset": "12", "svtav1-params": "pred-struct=1"})


def decode(codec: str, pictures: list[bytes]) -> list[av.VideoFrame]:
    decoder = av.CodecContext.create(codec, "r")
    out = [frame for picture in pictures for frame in decoder.decode(av.Packet(picture))]
    return out + list(decoder.decode(None))


def assemble(starts_frame, payload_groups: list[list[bytes]]) -> list[list[bytes]]:  # type: ignore[no-untyped-def]
    """Payloads through the frame assembler, one RTP timestamp per group."""
    assembler = FrameAssembler(starts_frame)
    frames, sequence = [], 0
    for index, payloads in enumerate(payload_groups):
        for n, payload in enumerate(payloads):
            frames += assembler.push(sequence & 0xFFFF, index * FRAME_TICKS,
                                     n == len(payloads) - 1, payload, index / 30)
            sequence += 1
    return [frame.payloads for frame in frames]


# --- VP9 -------------------------------------------------------------------------------

def vp9_packetize(frame: bytes, picture_id: int, *, mtu: int = 300, layer: int | None = None,
                  first: bool = True, last: bool = True) -> list[bytes]:
    """RFC 9628 flexible mode as libwebrtc sends it: a 15-bit picture id, one reference
    index on inter frames, the scalability structure (with the size) on keyframes."""
    key = vp9.is_keyframe(frame)
    chunks = [frame[i:i + mtu] for i in range(0, len(frame), mtu)]
    payloads = []
    for n, chunk in enumerate(chunks):
        begin, end = n == 0, n == len(chunks) - 1
        flags = (0x80 | (0 if key else 0x40) | (0x20 if layer is not None else 0) | 0x10
                 | (0x08 if begin else 0) | (0x04 if end else 0)
                 | (0x02 if key and begin and first else 0))
        header = bytearray((flags, 0x80 | picture_id >> 8 & 0x7F, picture_id & 0xFF))
        if layer is not None:
            header.append(layer << 1)
        if not key:
            header.append(1 << 1)  # P_DIFF 1, no more
        if key and begin and first:
            info = vp9.keyframe_info(frame)
            assert info is not None
            header += (bytes((0x10,)) + info.width.to_bytes(2, "big")
                       + info.height.to_bytes(2, "big"))
        payloads.append(bytes(header) + chunk)
    return payloads


def test_vp9_pictures_come_back_whole_and_decode() -> None:
    frames = vp9_frames(30)
    pictures = [vp9.depacketize(p) for p in assemble(
        vp9.starts_frame, [vp9_packetize(f, i) for i, f in enumerate(frames)])]
    assert pictures == frames
    assert [i for i, p in enumerate(pictures) if vp9.is_keyframe(p)] == [0, 12, 24]
    assert len(decode("libvpx-vp9", pictures)) == 30


def test_a_vp9_keyframe_says_its_profile_and_size() -> None:
    [key] = vp9_frames(1, 640, 360)
    assert vp9.keyframe_info(key) == vp9.Vp9Keyframe(0, 8, 0, False, (1, 1), 640, 360)
    assert vp9.keyframe_info(vp9_frames(2)[1]) is None


def test_spatial_layers_make_a_superframe_that_decodes_to_the_top_layer() -> None:
    low, high = vp9_frames(1, 160, 90)[0], vp9_frames(1, 320, 180)[0]
    payloads = vp9_packetize(low, 7, layer=0, last=False) + vp9_packetize(high, 7, layer=1,
                                                                          first=False)
    [picture] = [vp9.depacketize(p) for p in assemble(vp9.starts_frame, [payloads])]
    assert picture.startswith(low + high) and picture[-1] == picture[len(low + high)]
    assert vp9.is_keyframe(picture)
    frames = decode("libvpx-vp9", [picture])
    assert (frames[-1].width, frames[-1].height) == (320, 180)


def test_vp9_descriptors_that_lie_are_errors() -> None:
    with pytest.raises(vp9.Vp9PayloadError):
        vp9.depacketize([b"\x80"])  # a picture id announced, none there
    with pytest.raises(vp9.Vp9PayloadError):
        vp9.depacketize([bytes((0x90, 0x01, 0xAA))])  # no B: not a frame start


def test_vp9_levels_follow_the_picture_size() -> None:
    assert [vp9_level(*size) for size in ((320, 240), (1280, 720), (1920, 1080))] == [
        20, 31, 40]


# --- AV1 -------------------------------------------------------------------------------

def split_obus(unit: bytes) -> list[bytes]:
    """The OBUs of an encoder's temporal unit, without size fields (as RTP carries them)
    and without the temporal delimiter."""
    obus, offset = [], 0
    while offset < len(unit):
        header = unit[offset]
        extension = 1 if header & 0x04 else 0
        assert header & 0x02, "the encoder writes sizes"
        size, start = read_leb128(unit, offset + 1 + extension)
        if header >> 3 & 0x0F != av1.OBU_TEMPORAL_DELIMITER:
            obus.append(bytes((header & ~0x02,)) + unit[offset + 1:offset + 1 + extension]
                        + unit[start:start + size])
        offset = start + size
    return obus


def av1_packetize(unit: bytes, mtu: int = 200) -> list[bytes]:
    """One OBU element per packet (W=0, so with its length); an OBU larger than the MTU
    split across packets with Y and Z; N on a keyframe's first packet."""
    payloads, elements = [], []
    for obu in split_obus(unit):
        for offset in range(0, len(obu), mtu):
            elements.append((obu[offset:offset + mtu], offset > 0, offset + mtu < len(obu)))
    keyframe = av1.is_keyframe(unit)
    for index, (piece, continued, goes_on) in enumerate(elements):
        header = (0x80 if continued else 0) | (0x40 if goes_on else 0)
        if index == 0 and keyframe:
            header |= 0x08
        payloads.append(bytes((header,)) + leb128(len(piece)) + piece)
    return payloads


def test_av1_temporal_units_come_back_and_decode() -> None:
    units = av1_units(30)
    tus = [av1.depacketize(p) for p in assemble(
        av1.starts_frame, [av1_packetize(u) for u in units])]
    assert len(tus) == len(units) == 30
    assert all(av1.OBU_TEMPORAL_DELIMITER not in [t for t, _, _ in av1.obus(tu)] for tu in tus)
    keys = [i for i, tu in enumerate(tus) if av1.is_keyframe(tu)]
    assert keys and keys[0] == 0
    assert len(decode("libdav1d", tus)) == 30


def test_av1_elements_aggregated_in_one_packet_come_apart() -> None:
    """W=2, as libwebrtc sends a keyframe: the sequence header with its length, then the
    frame, which runs to the end of the packet."""
    unit = av1_units(1)[0]
    sequence, frame = split_obus(unit)
    aggregated = bytes((0x28,)) + leb128(len(sequence)) + sequence + frame
    assert av1.depacketize([aggregated]) == av1.depacketize(av1_packetize(unit, mtu=10**6))
    assert av1.is_keyframe(av1.depacketize([aggregated]))


def test_the_sequence_header_describes_the_stream() -> None:
    key = av1.depacketize(av1_packetize(av1_units(1)[0]))
    found = av1.sequence_header(key)
    assert found is not None
    seq = av1.parse_sequence_header(found[1])
    assert (seq.profile, seq.width, seq.height, seq.subsampling, seq.high_bitdepth) == (
        0, 320, 240, (1, 1), False)


def test_av1_fragments_that_do_not_line_up_are_errors() -> None:
    with pytest.raises(av1.Av1PayloadError):
        av1.depacketize([bytes((0x80, 0x01, 0x30))])  # Z on the first packet
    with pytest.raises(av1.Av1PayloadError):
        av1.depacketize([bytes((0x40, 0x01, 0x30))])  # Y on the last
    with pytest.raises(av1.Av1PayloadError):
        av1.depacketize([bytes((0x00, 0x05, 0x30))])  # an element longer than its packet


# --- fMP4 ------------------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["vp9", "av1"])
def test_fmp4_with_vp9_or_av1_is_read_back_by_ffmpeg(codec: str, tmp_path: Path) -> None:
    if codec == "vp9":
        pictures = vp9_frames(24)
    else:
        pictures = [av1.depacketize(av1_packetize(u)) for u in av1_units(24)]
    keys = [vp9.is_keyframe(p) if codec == "vp9" else av1.is_keyframe(p) for p in pictures]
    config = video_config(codec, pictures[0], None)
    assert (config.width, config.height) == (320, 240)
    samples = [video_sample(codec, p) for p in pictures]
    run = fmp4.TrackRun(fmp4.VIDEO_TRACK, 0,
                        [(FRAME_TICKS, len(s), fmp4.sample_flags(k)) for s, k in zip(
                            samples, keys, strict=True)], samples)
    path = tmp_path / "video.mp4"
    path.write_bytes(fmp4.init_segment(config, None) + fmp4.media_segment(0, [run]))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.codec.id, stream.codec_context.width) == (
            av.Codec(codec, "r").id, 320)
        decoded = list(container.decode(stream))
    assert len(decoded) == 24 and decoded[-1].pts == 23 * FRAME_TICKS


def test_a_superframe_splits_back_into_its_layer_frames() -> None:
    frames = [bytes([0x82, 0x49]) + bytes(300), bytes([0x86]) + bytes(70_000), b"\x86\x01"]
    assert vp9.layer_frames(vp9.superframe(frames)) == frames
    single = frames[0]
    assert vp9.layer_frames(single) == [single]
    broken = vp9.superframe(frames)[:-1] + b"\xc1"  # an index that does not add up
    assert vp9.layer_frames(broken) == [broken]
