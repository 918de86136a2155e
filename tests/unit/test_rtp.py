import itertools

import pytest

from publisher_hls_agent.media.rtp import SenderReport, sequence_unwrapper, timestamp_unwrapper

pytestmark = pytest.mark.unit


def test_sequence_numbers_unwrap_across_the_16_bit_wrap() -> None:
    unwrapper = sequence_unwrapper()
    values = [65533, 65534, 65535, 0, 1, 2]
    assert [unwrapper.unwrap(v) for v in values] == [65533, 65534, 65535, 65536, 65537, 65538]


def test_reordered_packet_from_before_the_wrap_stays_before_it() -> None:
    unwrapper = sequence_unwrapper()
    assert unwrapper.unwrap(65535) == 65535
    assert unwrapper.unwrap(1) == 65537
    assert unwrapper.unwrap(0) == 65536
    assert unwrapper.unwrap(65534) == 65534
    assert unwrapper.last == 65537


def test_first_value_maps_to_itself_and_earlier_ones_below_it() -> None:
    unwrapper = sequence_unwrapper()
    assert unwrapper.unwrap(3) == 3
    assert unwrapper.unwrap(65535) == -1


def test_rtp_timestamps_unwrap_across_the_32_bit_wrap() -> None:
    unwrapper = timestamp_unwrapper()
    start = 2**32 - 3000 * 2
    out = [unwrapper.unwrap((start + 3000 * i) % 2**32) for i in range(5)]
    assert out == [start + 3000 * i for i in range(5)]
    assert all(b - a == 3000 for a, b in itertools.pairwise(out))


def test_large_forward_jump_below_half_the_range_is_forward() -> None:
    unwrapper = timestamp_unwrapper()
    unwrapper.unwrap(100)
    assert unwrapper.unwrap(100 + 2**31 - 1) == 100 + 2**31 - 1


def test_sender_report_converts_ntp_fixed_point() -> None:
    report = SenderReport.from_ntp64((3_900_000_000 << 32) | (1 << 31), 1234, 5.0)
    assert report.ntp_seconds == 3_900_000_000.5
    assert (report.rtp_timestamp, report.received_at) == (1234, 5.0)
