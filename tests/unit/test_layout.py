"""The recording's file names, spelled once (``layout.py``), and what the writers and
the recorder use being exactly those."""

from __future__ import annotations

import pytest

from publisher_hls_agent import layout
from publisher_hls_agent.hls import fmp4_writer, mpegts, tsformat, writer
from publisher_hls_agent.recorder import recording

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", [layout.PLAYLIST_NAME, layout.INIT_NAME,
                                  layout.init_segment_name(0), layout.init_segment_name(12),
                                  layout.segment_name(0, layout.TS_SEGMENT_SUFFIX),
                                  layout.segment_name(123456, layout.FMP4_SEGMENT_SUFFIX)])
def test_what_the_writer_names_a_player_may_fetch(name: str) -> None:
    assert layout.PLAYABLE_NAME.fullmatch(name)


@pytest.mark.parametrize("name", [layout.SUMMARY_NAME, layout.UPLOAD_STATE_NAME,
                                  layout.OUTPUT_NAME, "segment.ts", "segment1.ts.tmp",
                                  "playlistXm3u8", "../playlist.m3u8", "segment1.mp4",
                                  "init-.mp4", "init-1.mp4.tmp", "init-x.mp4"])
def test_nothing_else_may_be_fetched(name: str) -> None:
    assert not layout.PLAYABLE_NAME.fullmatch(name)


def test_the_names_spelled_elsewhere_agree() -> None:
    assert writer.PLAYLIST_NAME == layout.PLAYLIST_NAME
    assert writer.OUTPUT_NAME == layout.OUTPUT_NAME
    assert writer.TsHlsWriter.segment_suffix == layout.TS_SEGMENT_SUFFIX
    assert fmp4_writer.INIT_NAME == layout.INIT_NAME
    assert fmp4_writer.Fmp4HlsWriter.segment_suffix == layout.FMP4_SEGMENT_SUFFIX
    assert recording.SUMMARY_NAME == layout.SUMMARY_NAME
    assert (mpegts.PACKET_SIZE, mpegts.WRAP) == (tsformat.PACKET_SIZE, tsformat.WRAP)
    assert writer.CLOCK == tsformat.CLOCK
