"""Whether a recording process still answers the pool's pings: pure bookkeeping (the
times are given, the decisions returned), so it is tested without waiting.

A process answers each ``Ping`` from its event loop. A loop that is blocked, or a
process that is stopped (SIGSTOP, a debugger, swapped out for good), answers none, and
its recordings are being lost while its pipe still looks open: only silence says so.
A process is judged on the pings it was sent, never on the time since it was last
heard from: a worker whose own loop stalled sent nothing meanwhile, and the process
is not to blame for that.

A loop that runs but is starved answers late too: on a machine short of CPU (four
Chromium publishers and a busy core on 2 cores, measured), a turn of the loop took
seconds, each read of the sockets up to a second, and pings waited 2-6 s. Killing
that process would lose its recordings to load. So a process also shows progress, a
counter in shared memory its socket reads advance (``room/express.py``): one that
moves is starved, not hung, and is left alone; only a process that neither answers nor
moves for the timeout is killed (a loop spinning on one crafted packet, a deadlock,
SIGSTOP).
"""

from __future__ import annotations

from .ipc import Ping, Pong

PING_INTERVAL = 1.0
# A ping unanswered this long: the process is killed and its jobs fail. A recording's
# loop answers within a fraction of a second even under load: seconds mean it is not
# running.
PING_TIMEOUT = 5.0
# Until its first answer: the first recording process waits for the fork server to
# import the media stack before its event loop runs, which a busy machine can make
# take several seconds.
STARTUP_TIMEOUT = 30.0
SLOW_ANSWER = 2.0  # a round trip this long is worth a warning: the loop was held up


class Liveness:
    """One process's pings and answers."""

    def __init__(self, started: float, *, timeout: float = PING_TIMEOUT,
                 startup_timeout: float = STARTUP_TIMEOUT, slow: float = SLOW_ANSWER) -> None:
        self._timeout = timeout
        self._startup_timeout = startup_timeout
        self._slow = slow
        self._started = started
        self._next_seq = 0
        self._unanswered: dict[int, float] = {}  # seq -> sent at, oldest first
        self._running_since: float | None = None  # its first answer
        self._progress: int | None = None  # the counter as last read
        self._moved_at = started  # when it last moved

    def ping(self, now: float) -> Ping:
        """The next ping to send."""
        ping = Ping(self._next_seq)
        self._unanswered[ping.seq] = now
        self._next_seq += 1
        return ping

    def pong(self, pong: Pong, now: float) -> float | None:
        """Note an answer; its round trip if that is slow enough to report, else None.

        The pipe keeps order, so older pings are answered too. Pings sent before the
        first answer waited for the process's start, which says nothing about its loop:
        they are never reported."""
        sent = self._unanswered.get(pong.seq)
        if sent is None:
            return None  # answered already, or never ours
        for seq in [seq for seq in self._unanswered if seq <= pong.seq]:
            del self._unanswered[seq]
        if self._running_since is None:
            self._running_since = now
            return None
        round_trip = now - sent
        return round_trip if sent >= self._running_since and round_trip > self._slow else None

    def waiting(self, now: float) -> float:
        """How long the oldest unanswered ping has waited (0 if none has)."""
        oldest = next(iter(self._unanswered.values()), None)
        return 0.0 if oldest is None else now - oldest

    def progress(self, counter: int, now: float) -> None:
        """The process's progress counter, read at ``now``."""
        if counter != self._progress:
            self._progress, self._moved_at = counter, now

    def unresponsive(self, now: float) -> bool:
        """True once the process has left a ping unanswered for too long, and made no
        progress for as long."""
        if self._running_since is None:
            # Judged from its start, and only once it has been sent something.
            return bool(self._unanswered) and now - self._started > self._startup_timeout
        return self.waiting(now) > self._timeout and now - self._moved_at > self._timeout
