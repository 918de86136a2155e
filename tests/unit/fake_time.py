"""A clock and timers that move only when told: the recorder's start without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class FakeTimer:
    at: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeTime:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.timers: list[FakeTimer] = []

    def clock(self) -> float:
        return self.now

    def schedule(self, at: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(at, callback)
        self.timers.append(timer)
        return timer

    def pending(self) -> list[FakeTimer]:
        return [timer for timer in self.timers if not timer.cancelled]

    def advance(self, seconds: float) -> None:
        """Run every timer due by then, in time order, each at its own time."""
        end = self.now + seconds
        while due := sorted((t for t in self.pending() if t.at <= end), key=lambda t: t.at):
            timer = due[0]
            self.timers.remove(timer)
            self.now = max(self.now, timer.at)
            timer.callback()
        self.now = end
