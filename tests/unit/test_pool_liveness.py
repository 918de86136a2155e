"""The pool's ping bookkeeping: times in, decisions out, nothing waited for."""

import pytest

from publisher_hls_agent.worker.ipc import Pong
from publisher_hls_agent.worker.liveness import PING_TIMEOUT, Liveness

pytestmark = pytest.mark.unit


def answering(started: float = 0.0, **limits: float) -> Liveness:
    """A process that has answered its first ping at ``started``."""
    liveness = Liveness(started, **limits)
    assert liveness.pong(Pong(liveness.ping(started).seq), started) is None
    return liveness


def test_pings_are_numbered_in_order() -> None:
    liveness = Liveness(0.0)
    assert [liveness.ping(t).seq for t in (1.0, 2.0, 3.0)] == [0, 1, 2]


def test_a_process_that_answers_every_ping_is_never_judged() -> None:
    liveness = answering()
    for second in range(1, 600):
        now = float(second)
        ping = liveness.ping(now)
        assert liveness.pong(Pong(ping.seq), now + 0.003) is None  # nothing to report
        assert not liveness.unresponsive(now + 1)
        assert liveness.waiting(now + 1) == 0.0


def test_a_silent_process_is_unresponsive_once_its_oldest_ping_waited_too_long() -> None:
    liveness = answering(timeout=5.0)
    for second in range(1, 6):
        liveness.ping(float(second))
    assert liveness.waiting(6.0) == 5.0
    assert not liveness.unresponsive(6.0)  # exactly the timeout: not yet
    assert liveness.unresponsive(6.01)


def test_one_late_answer_clears_every_older_ping_and_is_reported() -> None:
    liveness = answering(timeout=5.0, slow=2.0)
    for second in range(1, 5):
        liveness.ping(float(second))
    # The loop was held up, then answered: the pipe keeps order, so the answer to
    # ping 2 means ping 1 was answered too (its pong is not needed to say so).
    assert liveness.pong(Pong(2), 4.5) == pytest.approx(2.5)
    assert liveness.waiting(4.5) == pytest.approx(1.5)  # ping 3, sent at 3.0
    assert liveness.pong(Pong(3), 4.6) is None  # 1.6 s: slow, not worth a word
    assert liveness.pong(Pong(4), 4.7) is None
    assert liveness.waiting(100.0) == 0.0
    assert not liveness.unresponsive(100.0)


def test_an_answer_to_an_older_ping_leaves_the_newer_ones_waiting() -> None:
    liveness = answering(timeout=5.0)
    liveness.ping(1.0)
    liveness.ping(2.0)
    liveness.pong(Pong(1), 2.5)
    assert liveness.waiting(7.0) == 5.0
    assert liveness.unresponsive(7.5)


def test_an_answer_to_no_ping_of_ours_changes_nothing() -> None:
    liveness = answering(timeout=5.0, slow=0.1)
    liveness.ping(1.0)
    assert liveness.pong(Pong(0), 2.0) is None  # answered already
    assert liveness.pong(Pong(99), 2.0) is None  # never sent
    assert liveness.unresponsive(6.5)


def test_a_stalled_worker_does_not_blame_the_process() -> None:
    """Judged on the pings it was sent: the worker's own loop stalled for 20 s and sent
    none, so the first ping after it is all the process can be late with."""
    liveness = answering(timeout=5.0)
    assert not liveness.unresponsive(20.0)
    liveness.ping(20.0)
    assert not liveness.unresponsive(24.0)
    assert liveness.unresponsive(25.5)


def test_a_starting_process_has_the_startup_allowance_for_its_first_answer() -> None:
    liveness = Liveness(0.0, timeout=5.0, startup_timeout=30.0)
    assert not liveness.unresponsive(40.0)  # sent nothing yet: nothing to answer
    for second in range(1, 30):
        liveness.ping(float(second))
        assert not liveness.unresponsive(float(second))
    liveness.ping(30.0)
    assert liveness.unresponsive(30.5)


def test_a_starting_process_answering_late_is_then_held_to_the_timeout() -> None:
    liveness = Liveness(0.0, timeout=5.0, startup_timeout=30.0, slow=2.0)
    for second in range(1, 13):
        liveness.ping(float(second))
    # Imports done, its loop answers the twelve pings that waited for it: late, but
    # because it was starting, which is no news.
    assert [liveness.pong(Pong(seq), 12.5) for seq in range(12)] == [None] * 12
    assert not liveness.unresponsive(13.0)
    liveness.ping(13.0)
    assert not liveness.unresponsive(18.0)
    assert liveness.unresponsive(18.5)


def test_once_running_a_slow_answer_is_reported() -> None:
    liveness = answering(slow=2.0)
    liveness.ping(1.0)
    assert liveness.pong(Pong(1), 3.5) == pytest.approx(2.5)


def test_the_default_timeout() -> None:
    liveness = answering()
    liveness.ping(1.0)
    assert not liveness.unresponsive(1.0 + PING_TIMEOUT)
    assert liveness.unresponsive(1.1 + PING_TIMEOUT)


def test_a_starved_process_that_still_moves_is_not_judged() -> None:
    """Pings answered 2-6 s late on a machine short of CPU, its socket reads going on:
    killing it would lose its recordings to load. Once it stops moving, it is."""
    liveness = answering(timeout=5.0)
    for second in range(1, 30):
        liveness.ping(float(second))
        liveness.progress(second, float(second))  # a read of its sockets each second
        assert not liveness.unresponsive(second + 0.5)
    assert liveness.waiting(30.0) == 29.0
    for second in range(30, 36):
        liveness.progress(29, float(second))  # stuck on one packet
    assert not liveness.unresponsive(34.0)
    assert liveness.unresponsive(34.01)
