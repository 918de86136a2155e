"""The NACK schedule and packets: timed for LiveKit's SFU, bounded, wrap-safe."""

from __future__ import annotations

import pytest
from aiortc.rtp import RtcpPacket

from publisher_hls_agent.media.nack import (
    MAX_GAP,
    MAX_MISSING,
    NACK_INTERVAL,
    NACK_MAX_AGE,
    NackList,
    nack_items,
    nack_packets,
)
from publisher_hls_agent.media.rtp import sequence_unwrapper

pytestmark = pytest.mark.unit


def test_a_gap_is_asked_for_at_once_then_again_every_interval_until_it_arrives() -> None:
    nacks = NackList()
    for seq in (10, 11, 14):
        nacks.received(seq, 0.0)
    assert nacks.due(0.0) == [12, 13]
    assert nacks.due(NACK_INTERVAL / 2) == []  # not yet again
    assert nacks.due(NACK_INTERVAL) == [12, 13]
    nacks.received(12, 0.1)  # a retransmission
    assert nacks.due(2 * NACK_INTERVAL) == [13]
    assert nacks.stats.recovered == 1 and nacks.stats.missing == 2


def test_a_packet_too_old_to_matter_is_given_up() -> None:
    nacks = NackList()
    nacks.received(1, 0.0)
    nacks.received(3, 0.0)
    t = 0.0
    asked = 0
    while t <= NACK_MAX_AGE:
        asked += bool(nacks.due(t))
        t += 0.01
    assert asked >= NACK_MAX_AGE // NACK_INTERVAL  # asked all along
    assert nacks.due(NACK_MAX_AGE + 0.01) == [] and nacks.missing == 0
    assert nacks.stats.abandoned == 1 and nacks.next_due() is None


def test_next_due_says_when_to_wake() -> None:
    nacks = NackList()
    assert nacks.next_due() is None
    nacks.received(1, 0.0)
    nacks.received(3, 1.0)
    assert nacks.next_due() == 1.0
    nacks.due(1.0)
    assert nacks.next_due() == pytest.approx(1.0 + NACK_INTERVAL)


def test_a_jump_is_not_a_list_of_thousands_of_nacks() -> None:
    nacks = NackList()
    nacks.received(100, 0.0)
    nacks.received(102, 0.0)  # one real gap
    nacks.received(102 + 32_767, 0.0)  # a crafted (or broken) jump
    assert nacks.due(0.0) == []  # the jump cleared the list instead of filling it
    assert nacks.stats.jumps == 1 and nacks.stats.abandoned == 1
    nacks.received(102 + 32_767 + MAX_GAP, 0.0)  # a gap of exactly MAX_GAP - 1 is asked for
    assert len(nacks.due(0.0)) == MAX_GAP - 1


def test_the_list_is_bounded_oldest_out_first() -> None:
    nacks = NackList()
    seq = 0
    nacks.received(seq, 0.0)
    for _ in range(4):
        seq += 300
        nacks.received(seq, 0.0)  # 299 missing each time
    due = nacks.due(0.0)
    assert len(due) == MAX_MISSING and due[-1] == seq - 1
    assert nacks.stats.abandoned == 4 * 299 - MAX_MISSING


def test_lists_across_the_16_bit_wrap_stay_in_order_and_pack() -> None:
    unwrap = sequence_unwrapper()
    nacks = NackList()
    for seq in (65533, 1, 3):  # 65534, 65535, 0 and 2 lost
        nacks.received(unwrap.unwrap(seq), 0.0)
    due = nacks.due(0.0)
    assert [s & 0xFFFF for s in due] == [65534, 65535, 0, 2]
    [packet] = nack_packets(7, 8, due)
    [parsed] = RtcpPacket.parse(packet)
    assert (parsed.fmt, parsed.ssrc, parsed.media_ssrc) == (1, 7, 8)
    assert nack_items(due) == [(65534, 0b1011)]  # one PID across the wrap


@pytest.mark.parametrize("seqs", [[5], [5, 6], [5, 21], [5, 22], list(range(100, 400, 3))])
def test_packets_carry_exactly_the_numbers_asked_for(seqs: list[int]) -> None:
    carried: list[int] = []
    for packet in nack_packets(1, 2, seqs):
        for parsed in RtcpPacket.parse(packet):
            carried += parsed.lost
    assert sorted(set(carried)) == seqs
    assert all(len(p) <= 12 + 4 * 64 for p in nack_packets(1, 2, seqs))
