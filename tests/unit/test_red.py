"""RED (RFC 2198) payloads as LiveKit and browsers send Opus."""

from __future__ import annotations

import struct

import pytest

from publisher_hls_agent.media.red import RedPayloadError, split_red

pytestmark = pytest.mark.unit


def red(blocks: list[tuple[int, bytes]], primary: bytes, pt: int = 111) -> bytes:
    header = b"".join(struct.pack("!BI", 0x80 | pt, (offset << 10 | len(data)) << 8)[:4]
                      for offset, data in blocks)
    return header + bytes([pt]) + b"".join(data for _, data in blocks) + primary


def test_blocks_come_oldest_first_with_the_primary_last() -> None:
    payload = red([(1920, b"old"), (960, b"newer")], b"primary")
    assert split_red(payload) == [(1920, b"old"), (960, b"newer"), (0, b"primary")]


def test_a_packet_without_redundancy_is_just_its_primary() -> None:
    assert split_red(bytes([111]) + b"opus") == [(0, b"opus")]


def test_empty_redundant_blocks_are_skipped() -> None:
    assert split_red(red([(960, b"")], b"p")) == [(0, b"p")]


@pytest.mark.parametrize("cut", range(0, 13))
def test_truncated_payloads_are_errors(cut: int) -> None:
    payload = red([(960, b"abcdef")], b"p")[:cut]  # header 5 bytes, data 6, primary 1
    if cut >= 11:
        split_red(payload)  # the whole redundant block is there: only the primary is short
        return
    with pytest.raises(RedPayloadError):
        split_red(payload)
