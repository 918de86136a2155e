"""Thumbnails: which keyframes, what size, the images and their playlist, from real
encoders' keyframes (libx264, libvpx-vp9)."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from publisher_hls_agent.config import ThumbnailConfig
from publisher_hls_agent.inspection.playlist import MediaPlaylist
from publisher_hls_agent.media import h264, vp9
from publisher_hls_agent.recorder.thumbnails import (
    Thumbnails,
    ThumbnailSchedule,
    scaled_size,
)

from .encoded_video import encode


def is_keyframe(codec: str, frame: bytes) -> bool:
    if codec == "h264":
        return h264.describe_access_unit(h264.split_annexb(frame))[0]
    return vp9.is_keyframe(frame)

pytestmark = pytest.mark.unit


def test_the_first_keyframe_at_or_after_each_interval() -> None:
    schedule = ThumbnailSchedule(5.0)
    taken = [t for t in (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 10.5, 17.0, 19.0, 20.0) if
             schedule.wants(t)]
    assert taken == [0.0, 6.0, 10.0, 17.0, 20.0]


@pytest.mark.parametrize(("asked", "made"), [
    ((320, 0), (320, 180)), ((0, 90), (160, 90)), ((0, 0), (1280, 720)),
    ((100, 100), (100, 100)), ((321, 0), (320, 180)),
])
def test_sizes_keep_the_aspect_ratio_where_one_side_is_open(
        asked: tuple[int, int], made: tuple[int, int]) -> None:
    assert scaled_size((1280, 720), *asked) == made


@pytest.mark.parametrize(("codec", "encoder", "image_format"), [
    ("h264", "libx264", "jpg"), ("h264", "libx264", "png"), ("vp9", "libvpx-vp9", "webp"),
])
def test_keyframes_become_images_with_a_playlist(tmp_path: Path, codec: str, encoder: str,
                                                 image_format: str) -> None:
    # Keyframes at 0, 1 and 2 s; an H.264 one with its SPS and PPS, as the recorder
    # writes every IDR (room/tracks.H264Reader adds them where the publisher did not).
    options = {"x264-params": "repeat-headers=1"} if encoder == "libx264" else None
    frames = encode(encoder, 90, 640, 360, keyframe_every=30, options=options)
    keyframes = [frame for frame in frames if is_keyframe(codec, frame)][:3]
    assert len(keyframes) == 3
    thumbnails = Thumbnails(tmp_path, codec, ThumbnailConfig(1.5, 160, 0, image_format))
    for second, keyframe in enumerate(keyframes):
        thumbnails.keyframe(keyframe, float(second))
    made = thumbnails.finish(end=3.0)
    assert [(t.name, t.at) for t in made] == [(f"thumb00000.{image_format}", 0.0),
                                               (f"thumb00001.{image_format}", 2.0)]
    for thumbnail in made:
        with av.open(str(tmp_path / "thumbnails" / thumbnail.name)) as image:
            picture = next(image.decode(video=0))
            assert (picture.width, picture.height) == (160, 90)
    text = (tmp_path / "thumbnails" / "thumbnails.m3u8").read_text()
    assert "#EXT-X-IMAGES-ONLY" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    playlist = MediaPlaylist.parse(text)
    assert [(e.uri, e.duration) for e in playlist.entries] == [
        (f"thumb00000.{image_format}", 2.0), (f"thumb00001.{image_format}", 1.0)]


def test_a_picture_that_cannot_be_decoded_is_skipped(tmp_path: Path) -> None:
    thumbnails = Thumbnails(tmp_path, "h264", ThumbnailConfig(1.0))
    thumbnails.keyframe(b"\x00\x00\x00\x01\x65" + bytes(100), 0.0)
    thumbnails.keyframe(encode("libx264", 1, 320, 240)[0], 1.0)
    assert [t.at for t in thumbnails.finish(end=2.0)] == [1.0]
