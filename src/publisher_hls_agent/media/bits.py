"""Reading codec headers bit by bit, most significant bit first. Pure.

Only for the few header fields the recorder needs from a keyframe (H.264's SPS, VP9,
AV1): never on the per-packet path.
"""

from __future__ import annotations

from ..errors import BitsExhausted


class BitReader:
    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._left = len(data) * 8

    def read(self, count: int) -> int:
        if count > self._left:
            raise BitsExhausted(f"{count} bits wanted, {self._left} left")
        self._left -= count
        return (self._value >> self._left) & ((1 << count) - 1)

    def flag(self) -> bool:
        return bool(self.read(1))

    def ue(self) -> int:
        """H.264's unsigned Exp-Golomb code (ue(v), H.264 9.1)."""
        zeros = 0
        while not self.read(1):
            zeros += 1
            if zeros > 31:
                raise BitsExhausted("Exp-Golomb code longer than 32 bits")
        return self.read(zeros) + (1 << zeros) - 1

    def se(self) -> int:
        """H.264's signed Exp-Golomb code (se(v))."""
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)

    def uvlc(self) -> int:
        """AV1's variable-length unsigned integer (AV1 spec 4.10.3)."""
        zeros = 0
        while not self.read(1):
            zeros += 1
            if zeros >= 32:
                return (1 << 32) - 1
        return self.read(zeros) + (1 << zeros) - 1


def leb128(value: int) -> bytes:
    """AV1's little-endian base-128 size field."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_leb128(data: bytes, offset: int) -> tuple[int, int]:
    """(value, offset after it); BitsExhausted if ``data`` ends inside it."""
    value = shift = 0
    while True:
        if offset >= len(data) or shift > 56:
            raise BitsExhausted("truncated leb128")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, offset
