"""MPEG-TS facts (ISO/IEC 13818-1) that its writer and its readers share."""

from __future__ import annotations

PACKET_SIZE = 188
SYNC = 0x47  # the first byte of every packet
CLOCK = 90000  # PTS, DTS and the PCR base count this many ticks a second
WRAP = 1 << 33  # those counters are 33 bits wide
