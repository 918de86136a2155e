"""RTP payload for redundant audio (RED, RFC 2198), as LiveKit and browsers send Opus.

Each RED packet carries the current Opus frame (the primary) and copies of up to two
earlier ones, so a lost packet's frame usually arrives in the next one. Pure.

Header: for each redundant block 4 bytes (F=1, block payload type, 14-bit timestamp
offset back from the packet's timestamp, 10-bit length), then one byte (F=0, the
primary's payload type); the blocks follow in the same order, the primary last.
"""

from __future__ import annotations

from ..errors import RedPayloadError


def split_red(payload: bytes) -> list[tuple[int, bytes]]:
    """``(timestamp offset back, Opus frame)`` for every block, oldest first, the
    primary (offset 0) last. Empty blocks (RED's padding) are left out."""
    headers: list[tuple[int, int]] = []  # (offset, length) of the redundant blocks
    position = 0
    while True:
        if position >= len(payload):
            raise RedPayloadError("RED header runs past the payload")
        first = payload[position]
        if not first & 0x80:
            position += 1
            break
        if position + 4 > len(payload):
            raise RedPayloadError("truncated RED block header")
        word = int.from_bytes(payload[position + 1:position + 4], "big")
        headers.append((word >> 10, word & 0x3FF))
        position += 4
    blocks: list[tuple[int, bytes]] = []
    for offset, length in headers:
        if position + length > len(payload):
            raise RedPayloadError("RED block runs past the payload")
        if length:
            blocks.append((offset, payload[position:position + length]))
        position += length
    blocks.append((0, payload[position:]))
    return blocks
