"""Every message between the worker and its recording processes (pickled over a pipe).

The worker sends ``StartJob``, ``Command`` and ``Ping``; a recording process sends
``Progress`` (every second), ``Recorded`` (a recording finalized), ``Finished`` (a job's
outcome) and ``Pong`` (a ``Ping`` answered from its event loop). Each is a frozen
dataclass and each direction a closed union: a reader that forgets a kind or reads a
field a message does not have is mypy's error, not a recording's. What comes off the
pipe is checked against the union once (``to_process``, ``from_process``) and is typed
from there on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ..recorder.options import RecorderOptions

# --- the worker to a recording process -------------------------------------------------


@dataclass(frozen=True)
class StartJob:
    job_id: str
    url: str
    token: str
    room: str
    participant: str
    options: RecorderOptions


class CommandOp(enum.Enum):
    ACTIVATE = "activate"
    STOP_RECORDING = "stop_recording"  # the job then waits for another activation
    END = "end"  # the job, with a reason
    SHUTDOWN = "shutdown"  # every job, then the process exits


@dataclass(frozen=True)
class Command:
    op: CommandOp
    job_id: str = ""  # none for SHUTDOWN
    reason: str = ""


@dataclass(frozen=True)
class Ping:
    seq: int


ToProcess = StartJob | Command | Ping

# --- a recording process to the worker -------------------------------------------------


class Outcome(enum.Enum):
    SUCCESS = "success"  # the values are the jobs metric's labels
    FAILED = "failed"


@dataclass(frozen=True)
class Progress:
    jobs: dict[str, dict[str, Any]]  # by job id: its current recording's progress
    upload_failures: dict[str, int]  # the process's totals so far, by cause


@dataclass(frozen=True)
class Recorded:
    """A recording of the job was finalized (a job may make several)."""

    job_id: str
    summary: dict[str, Any]


@dataclass(frozen=True)
class Finished:
    job_id: str
    outcome: Outcome
    error: str = ""

    @classmethod
    def failed(cls, job_id: str, error: str) -> Finished:
        return cls(job_id, Outcome.FAILED, error)


@dataclass(frozen=True)
class Pong:
    seq: int  # the Ping's


Event = Progress | Recorded | Finished  # what the pool passes on to the agent
FromProcess = Event | Pong


def to_process(message: object) -> ToProcess | None:
    """``message`` as the worker's, or None if it is not one."""
    return message if isinstance(message, ToProcess) else None


def from_process(message: object) -> FromProcess | None:
    """``message`` as a recording process's, or None if it is not one."""
    return message if isinstance(message, FromProcess) else None
