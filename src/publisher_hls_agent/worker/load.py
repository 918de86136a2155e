"""The worker's load as the server is told it: the CPU its processes use, measured, and
what the jobs just taken will cost before the measurement shows it.

A recording's cost depends on its codec far more than on anything else: passed through
(H.264, Opus kept or made AAC) it is a few per cent of a core, transcoded (a browser's
VP8) about ten times that (``scripts/bench``, README "What a recording costs"). Counting
recordings (``MAX_RECORDINGS``, still the hard cap) would call a worker with a few VP8
publishers idle while its transcoders fall behind. So the load is the CPU of the
worker's process tree over the last seconds, as a share of the cores it may use (what
livekit-agents' default load function measures, for this worker's processes only),
plus each new job's expected cost until the measurement has had time to see it; a job
that would take the load past ``LOAD_THRESHOLD`` is declined, and the server offers it
to another worker. ``LoadEstimate`` and ``TreeCpu`` are pure; ``process_tree`` and
``cpu_seconds_by_pid`` read ``/proc``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

# Expected cost of a job, in cores, until measured: a 720p30 VP8 recording transcoded
# (bench: 21 % of a core, the worker included) and one passed through (bench: 2-3 %).
TRANSCODED_JOB = 0.25
PASSTHROUGH_JOB = 0.03
RAMP = 15.0  # seconds a job's expected cost counts (its media, transcoder, first segments)
WINDOW = 5.0  # seconds the measured CPU is averaged over
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class LoadEstimate:
    def __init__(self, cores: int) -> None:
        self._cores = max(1, cores)
        self._samples: deque[tuple[float, float]] = deque()  # (when, CPU seconds so far)
        self._reserved: dict[str, tuple[float, float]] = {}  # job -> (cores, since)

    def sample(self, cpu_seconds: float, now: float) -> None:
        """The process tree's CPU seconds so far (a counter), read at ``now``."""
        self._samples.append((now, cpu_seconds))
        while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW:
            self._samples.popleft()

    def reserve(self, job: str, cores: float, now: float) -> None:
        self._reserved[job] = (cores, now)

    def release(self, job: str) -> None:
        self._reserved.pop(job, None)

    def measured(self) -> float:
        """Cores in use over the last window (0 before two samples)."""
        if len(self._samples) < 2:
            return 0.0
        (first, used_first), (last, used_last) = self._samples[0], self._samples[-1]
        return max(0.0, used_last - used_first) / (last - first) if last > first else 0.0

    def load(self, now: float) -> float:
        """The share of the worker's cores in use or promised: 0 idle, 1 full (or more)."""
        for job, (_, since) in list(self._reserved.items()):
            if now - since > RAMP:
                del self._reserved[job]
        promised = sum(cores for cores, _ in self._reserved.values())
        return (self.measured() + promised) / self._cores

    def admits(self, cores: float, threshold: float, now: float) -> bool:
        """Whether a job expected to cost ``cores`` keeps the load within ``threshold``."""
        return self.load(now) + cores / self._cores <= threshold


def expected_cost(video_mimes: Iterable[str], passthrough: frozenset[str]) -> float:
    """A job's expected cores from the video its participant publishes (mime types, lower
    case): transcoded if any cannot pass through, or if none is published yet (a
    browser's default is VP8: better to overestimate for a few seconds)."""
    mimes = list(video_mimes)
    if mimes and all(mime in passthrough for mime in mimes):
        return PASSTHROUGH_JOB
    return TRANSCODED_JOB


def _stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (the state is [0])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(roots: Iterable[int]) -> list[int]:
    """These processes and all their descendants (a recording process's transcoders)."""
    children = _children if _CHILDREN_LISTED else _children_from_a_scan()
    tree, frontier = list(roots), list(roots)
    while frontier:
        frontier = [child for pid in frontier for child in children(pid)]
        tree += frontier
    return tree


# Each thread's children, as the kernel lists them (CONFIG_PROC_CHILDREN): a few small
# reads, where a scan of /proc reads every process's stat on a machine that may run
# thousands.
_CHILDREN_LISTED = Path(f"/proc/self/task/{os.getpid()}/children").exists()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found  # gone meanwhile
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def _children_from_a_scan() -> Callable[[int], list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(entry.name)[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
    return lambda pid: children.get(pid, [])


def cpu_seconds_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """User and system CPU seconds of each process (every thread), from ``/proc``; a
    process gone in the meantime is left out."""
    seconds = {}
    for pid in pids:
        try:
            fields = _stat(pid)
            seconds[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return seconds


class TreeCpu:
    """CPU seconds a changing set of processes used, as one counter that never goes
    back: a process that ended keeps what it had used by the last reading (a transcoder
    ends with its track; summed afresh, the tree's total would drop), and one that began
    counts from its start."""

    def __init__(self) -> None:
        self._last: dict[int, float] = {}
        self.total = 0.0

    def read(self, now: dict[int, float]) -> float:
        """Add what ``cpu_seconds_by_pid`` says now; the counter."""
        for pid, seconds in now.items():
            self.total += max(0.0, seconds - self._last.get(pid, 0.0))
        self._last = now
        return self.total
