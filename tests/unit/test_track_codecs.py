"""Which codec of a published track the room client records, and how."""

from __future__ import annotations

import pytest
from aiortc.codecs import CODECS
from aiortc.rtcicetransport import RTCIceParameters
from aiortc.rtcpeerconnection import find_common_codecs
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.sdp import MediaDescription, SessionDescription
from livekit.protocol import models

from publisher_hls_agent.room.client import _recordable, track_from_info
from publisher_hls_agent.room.negotiation import extend_codec_table

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


def test_answers_accept_vp9_av1_and_red_once() -> None:
    extend_codec_table()
    extend_codec_table()
    mimes = [codec.mimeType.lower() for codec in CODECS["video"]]
    assert mimes.count("video/vp9") == mimes.count("video/av1") == 1
    payload_types = [codec.payloadType for codec in CODECS["video"]]
    assert len(payload_types) == len(set(payload_types))
    assert [c.mimeType.lower() for c in CODECS["audio"]].count("audio/red") == 1


def test_an_answer_to_livekits_audio_offer_keeps_red_and_opus() -> None:
    extend_codec_table()
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 63 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
        "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n"
        "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n")
    common = find_common_codecs(CODECS["audio"], offer.media[0].rtp.codecs)
    assert [(c.mimeType.lower(), c.payloadType) for c in common] == [
        ("audio/red", 63), ("audio/opus", 111)]
    assert "a=fmtp:63 111/111" in str(_answer_media(common))


def _answer_media(codecs: list[RTCRtpCodecParameters]) -> str:
    media = MediaDescription(kind="audio", port=9, profile="UDP/TLS/RTP/SAVPF",
                             fmt=[c.payloadType for c in codecs])
    media.rtp.codecs = codecs
    media.ice = RTCIceParameters(usernameFragment="u", password="p")
    return str(media)
