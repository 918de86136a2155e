"""Small, real H.264 material for parser tests: NAL units and an RFC 6184 packetizer."""

from __future__ import annotations

import struct

# NAL units with real headers; their bodies are filler (nothing here parses slice data).
SPS = bytes.fromhex("6742c00da6811e2fd9014000000300400000078083c50a9a")
PPS = bytes.fromhex("68ce3c80")
IDR = bytes([0x65, 0x88]) + bytes(range(256)) * 8  # first_mb_in_slice = 0
SLICE = bytes([0x41, 0x9A]) + bytes(range(200))  # first_mb_in_slice = 0
SECOND_SLICE = bytes([0x41, 0x40]) + bytes(50)  # first_mb_in_slice != 0


def packetize(nals: list[bytes], mtu: int = 1200, aggregate: bool = True) -> list[bytes]:
    """RTP payloads for one access unit: STAP-A for small leading NALs, FU-A for big ones."""
    payloads: list[bytes] = []
    pending: list[bytes] = []

    def flush() -> None:
        if len(pending) == 1:
            payloads.append(pending[0])
        elif pending:
            header = bytes([(pending[0][0] & 0x60) | 24])
            payloads.append(header + b"".join(struct.pack("!H", len(n)) + n for n in pending))
        pending.clear()

    for nal in nals:
        if len(nal) > mtu:
            flush()
            indicator = (nal[0] & 0xE0) | 28
            body = nal[1:]
            chunks = [body[i : i + mtu] for i in range(0, len(body), mtu)]
            for index, chunk in enumerate(chunks):
                fu = nal[0] & 0x1F
                if index == 0:
                    fu |= 0x80
                if index == len(chunks) - 1:
                    fu |= 0x40
                payloads.append(bytes([indicator, fu]) + chunk)
        elif aggregate and len(nal) < 100:
            pending.append(nal)
        else:
            flush()
            payloads.append(nal)
    flush()
    return payloads
