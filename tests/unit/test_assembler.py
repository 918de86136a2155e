import itertools
import random

import pytest

from publisher_hls_agent.media import h264
from publisher_hls_agent.media.assembler import AssembledFrame, FrameAssembler

from .h264_samples import IDR, PPS, SLICE, SPS, packetize

pytestmark = pytest.mark.unit

Packet = tuple[int, int, bool, bytes]


def stream(frames: list[list[bytes]], seq0: int = 100, ts0: int = 1000) -> list[Packet]:
    """RTP packets (seq, timestamp, marker, payload) for access units 3000 ticks apart."""
    packets = []
    seq = seq0
    for index, nals in enumerate(frames):
        payloads = packetize(nals, mtu=500)
        for n, payload in enumerate(payloads):
            packets.append((seq & 0xFFFF, (ts0 + 3000 * index) & 0xFFFFFFFF,
                            n == len(payloads) - 1, payload))
            seq += 1
    return packets


def feed(assembler: FrameAssembler, packets: list[Packet], t0: float = 0.0,
         step: float = 0.001) -> list[AssembledFrame]:
    out = []
    for i, (seq, ts, marker, payload) in enumerate(packets):
        out += assembler.push(seq, ts, marker, payload, t0 + i * step)
    return out


def new() -> FrameAssembler:
    return FrameAssembler(h264.starts_access_unit, max_wait=0.1)


GOP = [[SPS, PPS, IDR]] + [[SLICE]] * 4


def test_in_order_frames_come_out_whole() -> None:
    frames = feed(new(), stream(GOP))
    assert [h264.depacketize(f.payloads) for f in frames] == GOP
    offsets = [f.rtp_timestamp - frames[0].rtp_timestamp for f in frames]
    assert offsets == [0, 3000, 6000, 9000, 12000]
    assert frames[0].after_loss  # nothing is known about what came before the first frame
    assert not any(f.after_loss for f in frames[1:])


def test_sequence_and_timestamp_wrap() -> None:
    frames = feed(new(), stream(GOP * 2, seq0=65530, ts0=2**32 - 7000))
    assert len(frames) == 10
    stamps = [f.rtp_timestamp for f in frames]
    assert all(b - a == 3000 for a, b in itertools.pairwise(stamps))


def test_reordering_within_the_wait_loses_nothing() -> None:
    packets = stream(GOP)
    rng = random.Random(3)
    shuffled = packets[:]
    for i in range(1, len(shuffled) - 1, 2):  # swap neighbours, never the first packet
        if rng.random() < 0.7:
            shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    assembler = new()
    frames = feed(assembler, shuffled)
    assert [h264.depacketize(f.payloads) for f in frames] == GOP
    assert assembler.frames_dropped == 0


def test_a_lost_packet_drops_its_frame_after_the_wait_and_flags_the_next() -> None:
    packets = stream(GOP)
    lost = next(i for i, p in enumerate(packets) if p[1] == packets[-1][1] - 6000)  # frame 2
    assembler = new()
    frames = feed(assembler, packets[:lost] + packets[lost + 1:], step=0.11)
    got = [f.rtp_timestamp - 1000 for f in frames]
    assert got == [0, 3000, 9000, 12000]
    assert [f.after_loss for f in frames] == [True, False, True, False]
    assert assembler.frames_dropped == 1


def test_a_gap_is_not_given_up_before_the_wait() -> None:
    packets = stream(GOP)
    lost = len(packets) - 2
    assembler = new()
    frames = feed(assembler, packets[:lost] + packets[lost + 1:], step=0.001)
    assert len(frames) == 3  # frame 3 waits for its retransmission; frame 4 waits behind it
    retransmitted = assembler.push(*packets[lost], arrival=0.05)
    assert len(retransmitted) == 2
    assert not any(f.after_loss for f in retransmitted)


def test_a_backlog_read_at_once_does_not_give_up_what_came_in_time() -> None:
    """A receiver that fell behind reads the socket's backlog late, in batches, each
    packet dated by its arrival (room/express.py). The gap at seq 106 is known, and
    asked for, when 107 is read: at 1.0 s, though 107 arrived at 0.01. 108 was already
    waiting then; 109 and the retransmission came after the NACK, 30 and 50 ms after,
    in time; all three are read two seconds later."""
    packets = stream(GOP)
    gap = 6
    assembler = new()  # waits 0.1 s
    frames = feed(assembler, packets[:gap])
    frames += assembler.push(*packets[gap + 1], arrival=0.010, seen=1.0)
    frames += assembler.push(*packets[gap + 2], arrival=0.011, seen=3.0)
    frames += assembler.push(*packets[gap + 3], arrival=1.03, seen=3.0)
    frames += assembler.push(*packets[gap], arrival=1.05, seen=3.0)
    assert [h264.depacketize(f.payloads) for f in frames] == GOP
    assert assembler.frames_dropped == 0

    # Dated by their reading, as before: the two-second stall looked like the stream's,
    # and the frame was given up with its retransmission on the way.
    dated_by_reading = new()
    feed(dated_by_reading, packets[:gap])
    for index, read_at in ((gap + 1, 1.0), (gap + 2, 3.0), (gap + 3, 3.0), (gap, 3.0)):
        dated_by_reading.push(*packets[index], arrival=read_at)
    assert dated_by_reading.frames_dropped == 1


def test_a_gap_read_late_is_still_given_up_once_the_stream_went_on_without_it() -> None:
    packets = stream(GOP)
    gap = 6
    assembler = new()  # waits 0.1 s
    frames = feed(assembler, packets[:gap])
    frames += assembler.push(*packets[gap + 1], arrival=0.010, seen=1.0)
    frames += assembler.push(*packets[gap + 2], arrival=1.2, seen=3.0)  # 0.2 s after 1.0
    assert [f.rtp_timestamp - 1000 for f in frames] == [0, 6000, 9000]
    assert assembler.frames_dropped == 1


def test_late_and_duplicate_packets_are_counted_not_emitted() -> None:
    packets = stream(GOP)
    assembler = new()
    frames = feed(assembler, packets + packets[:3])
    assert len(frames) == 5
    assert assembler.packets_late == 3


def test_starting_mid_frame_waits_for_a_frame_start() -> None:
    packets = stream(GOP)
    first_fragment_after_start = 2  # inside the IDR's FU-A run
    frames = feed(new(), packets[first_fragment_after_start:])
    assert [h264.depacketize(f.payloads) for f in frames] == GOP[1:]


def test_loss_of_a_marker_packet_still_recovers() -> None:
    packets = stream([[SLICE]] * 6)
    del packets[2]  # a whole one-packet frame
    frames = feed(new(), packets, step=0.06)
    assert len(frames) == 5


def test_a_retransmission_late_in_the_default_window_still_fills_its_frame() -> None:
    assembler = FrameAssembler(h264.starts_access_unit)  # the reorder window in use
    packets = stream(GOP * 4)
    lost = packets.pop(len(packets) // 3)
    frames = feed(assembler, packets, step=0.01)  # the gap stays open for ~0.3 s
    assert len(frames) < 20
    frames += assembler.push(*lost, 0.45)  # its third NACK's answer
    frames += feed(assembler, stream([[SLICE]], seq0=100 + len(packets) + 1,
                                     ts0=1000 + 3000 * 20), t0=0.46)
    assert len(frames) == 21 and assembler.frames_dropped == 0


def test_a_frame_that_never_ends_is_given_up_and_costs_little() -> None:
    """Packets that share one timestamp and never set the marker (a hostile or broken
    publisher): bounded memory, and each push does a bounded amount of work."""
    import time

    assembler = FrameAssembler(h264.starts_access_unit)
    start = time.perf_counter()
    for seq in range(20_000):
        assert assembler.push(seq & 0xFFFF, 5000, False, SLICE, seq * 1e-5) == []
        assert len(assembler._buffer) <= 2049
    assert time.perf_counter() - start < 5  # was quadratic: 65 s for 16,000 packets
    assert assembler.frames_dropped >= 9
    # and a real stream after it is assembled again (after what was left of the junk,
    # which the new timestamp ends)
    frames = feed(assembler, stream(GOP, seq0=20_000, ts0=90_000), t0=1.0)
    assert [h264.depacketize(f.payloads) for f in frames[-len(GOP):]] == GOP


def test_losses_closer_than_the_window_do_not_queue_up_behind_each_other() -> None:
    """Each gap is waited for from when it was noticed: two unrecoverable losses 0.1 s
    apart cost one window, not two, and the reader never falls behind."""
    assembler = FrameAssembler(h264.starts_access_unit, max_wait=0.3)
    packets = stream(GOP * 12)  # 60 frames, each sent at its timestamp
    first_packet_of = {}
    for i, (_, ts, _, _) in enumerate(packets):
        first_packet_of.setdefault((ts - 1000) // 3000, i)
    lost = {first_packet_of[11], first_packet_of[14]}  # 0.1 s apart at 30 fps
    delivered: list[tuple[float, AssembledFrame]] = []
    for i, packet in enumerate(packets):
        if i not in lost:
            now = (packet[1] - 1000) / 90000
            delivered += [(now, f) for f in assembler.push(*packet, now)]
    assert assembler.frames_dropped == 2
    late = [now - (f.rtp_timestamp - 1000) / 90000 for now, f in delivered]
    assert max(late) <= 0.3 + 1 / 30 + 1e-9, max(late)  # one window, never two


def test_a_whole_keyframe_beyond_a_gap_ends_the_wait_at_once() -> None:
    """Frames between a lost packet and the next keyframe cannot be decoded anyway: once
    the keyframe is all here, reading jumps to it instead of waiting the window out."""
    assembler = FrameAssembler(h264.starts_access_unit, max_wait=10.0,
                               starts_keyframe=h264.starts_keyframe, keyframe_after=0.25)
    packets = stream(GOP * 2)  # IDR frames 0 and 5
    first_packet_of: dict[int, int] = {}
    for i, (_, ts, _, _) in enumerate(packets):
        first_packet_of.setdefault((ts - 1000) // 3000, i)
    del packets[first_packet_of[2]]
    frames = []
    wanted_at = []
    for i, packet in enumerate(packets):
        now = (packet[1] - 1000) / 90000 * 10  # slow: the gap ages past keyframe_after
        frames += assembler.push(*packet, now)
        if assembler.keyframe_wanted:
            assembler.keyframe_wanted = False
            wanted_at.append(i)
    assert [(f.rtp_timestamp - 1000) // 3000 for f in frames] == [0, 1, 5, 6, 7, 8, 9]
    assert frames[2].after_loss and h264.depacketize(frames[2].payloads) == GOP[0]
    assert len(wanted_at) == 1  # once for the gap, not once per packet
    assert assembler.frames_dropped == 1


def test_without_a_keyframe_test_the_window_is_waited_out() -> None:
    assembler = FrameAssembler(h264.starts_access_unit, max_wait=10.0)
    packets = stream(GOP * 2)
    del packets[len(packets) // 4]
    frames = feed(assembler, packets, step=0.01)
    assert len(frames) < 5 and assembler.frames_dropped == 0
