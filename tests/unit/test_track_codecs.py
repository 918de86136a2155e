"""Which codec of a published track the room client records, and how."""

from __future__ import annotations

import pytest
from aiortc.codecs import CODECS
from livekit.protocol import models

from publisher_hls_agent.room.client import _recordable, track_from_info
from publisher_hls_agent.room.negotiation import accept_vp9_and_av1

pytestmark = pytest.mark.unit


def video_info(mime: str, *backups: str) -> models.TrackInfo:
    return models.TrackInfo(sid="TR_v", type=models.TrackType.VIDEO, mime_type=mime,
                            width=1280, height=720,
                            codecs=[models.SimulcastCodecInfo(mime_type=m)
                                    for m in (mime, *backups)])


def test_a_recordable_codec_is_recorded_as_published() -> None:
    for mime in ("video/H264", "video/VP8", "video/VP9", "video/AV1"):
        track = _recordable(track_from_info(video_info(mime, "video/VP8")))
        assert (track.mime_type, track.published_mime_type) == (mime, "")


def test_an_unrecordable_codec_is_replaced_by_its_backup() -> None:
    track = _recordable(track_from_info(video_info("video/H265", "video/VP8")))
    assert (track.mime_type, track.published_mime_type) == ("video/VP8", "video/H265")
    alone = _recordable(track_from_info(video_info("video/H265")))
    assert (alone.mime_type, alone.published_mime_type) == ("video/H265", "")


def test_answers_accept_vp9_and_av1_once() -> None:
    accept_vp9_and_av1()
    accept_vp9_and_av1()
    mimes = [codec.mimeType.lower() for codec in CODECS["video"]]
    assert mimes.count("video/vp9") == mimes.count("video/av1") == 1
    payload_types = [codec.payloadType for codec in CODECS["video"]]
    assert len(payload_types) == len(set(payload_types))
