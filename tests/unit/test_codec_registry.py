"""The video codec registry (``media/codecs.py``) and what the rest of the agent keeps
by codec name agree: every container a codec passes through into can hold it, every
other codec can be transcoded, the answers offer every codec, and the recording format
follows from the container alone."""

from __future__ import annotations

import pytest
from aiortc.codecs import CODECS

from publisher_hls_agent.hls.fmp4_video import SAMPLE_ENTRIES
from publisher_hls_agent.hls.mpegts import VIDEO_STREAM_TYPES
from publisher_hls_agent.media.codecs import (
    FMP4,
    TRANSCODED_TO,
    TS,
    VIDEO_CODECS,
    RecordingFormat,
    codec_named,
)
from publisher_hls_agent.room.negotiation import extend_codec_table

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("codec", VIDEO_CODECS.values(), ids=lambda c: c.name)
def test_each_codec_is_carried_or_transcoded(codec) -> None:  # type: ignore[no-untyped-def]
    assert codec.mime == f"video/{codec.name}" and codec_named(codec.name) is codec
    if FMP4 in codec.passthrough:
        assert codec.name in SAMPLE_ENTRIES
    if TS in codec.passthrough:
        assert codec.name in VIDEO_STREAM_TYPES
    if codec.passthrough != {TS, FMP4}:  # somewhere it must become H.264
        assert codec.decoder is not None and codec.depacketize is not None
    # a reader for it: H.264's by NAL unit, or the whole-frame one
    assert (codec.depacketize is None) == (codec.is_keyframe is None) == (codec is TRANSCODED_TO)


def test_the_answers_accept_every_recordable_codec() -> None:
    extend_codec_table()
    offered = {codec.mimeType.lower() for codec in CODECS["video"]}
    assert set(VIDEO_CODECS) <= offered


def test_the_recording_format_follows_from_the_container() -> None:
    ts, fmp4 = RecordingFormat.for_container(TS), RecordingFormat.for_container(FMP4)
    assert (ts.audio_codec, fmp4.audio_codec) == ("aac", "opus")
    assert ts.passthrough_video == {"video/h264"}
    assert fmp4.passthrough_video == {"video/h264", "video/vp9", "video/av1"}
    with pytest.raises(ValueError):
        RecordingFormat.for_container("mkv")
