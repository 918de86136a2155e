"""The worker's recording processes: started up front, one job placed on the least
busy, replaced when one dies (its jobs are reported failed, the others go on)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from ..config import S3Config
from . import recording_process
from .recording_process import Command, StartJob

logger = logging.getLogger(__name__)

# Spawned, not forked: a fork of a process running an event loop and threads inherits
# their state half-way.
_CONTEXT = multiprocessing.get_context("spawn")

EventHandler = Callable[[tuple[Any, ...], int], None]  # (event, the process's pid)


class _Slot:
    def __init__(self, index: int, process: BaseProcess, connection: Connection) -> None:
        self.index = index
        self.process = process
        self.connection = connection
        self.jobs: set[str] = set()


class RecordingProcesses:
    def __init__(self, count: int, on_event: EventHandler, *, log_level: str,
                 log_format: str, s3: S3Config | None) -> None:
        self._count = count
        self._on_event = on_event
        self._process_args = (log_level, log_format, s3)
        self._slots: list[_Slot] = []
        self._closing = False

    def start(self) -> None:
        self._slots = [self._spawn(index) for index in range(self._count)]

    def start_job(self, job: StartJob) -> int:
        """Place the job on the process with the fewest; returns that process's pid."""
        slot = min(self._slots, key=lambda candidate: len(candidate.jobs))
        slot.jobs.add(job.job_id)
        self._send(slot, job)
        return slot.process.pid or 0

    def command(self, command: Command) -> None:
        for slot in self._slots:
            if command.job_id in slot.jobs:
                self._send(slot, command)

    def pids(self) -> list[int]:
        return [slot.process.pid for slot in self._slots if slot.process.pid]

    async def close(self, seconds: float) -> bool:
        """Ask every process to finalize its recordings and exit; True if all did
        within ``seconds`` (the rest are killed)."""
        self._closing = True
        for slot in self._slots:
            self._send(slot, Command("shutdown"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        clean = True
        for slot in self._slots:
            remaining = max(0.0, deadline - loop.time())
            await loop.run_in_executor(None, slot.process.join, remaining)
            if slot.process.is_alive():
                logger.error("recording process %s did not finish in time; killing it",
                             slot.process.pid)
                slot.process.kill()
                clean = False
            self._forget(slot)
        return clean

    def _spawn(self, index: int) -> _Slot:
        ours, theirs = _CONTEXT.Pipe()
        process = _CONTEXT.Process(target=recording_process.main, name=f"recording-{index}",
                                   args=(theirs, *self._process_args), daemon=False)
        process.start()
        theirs.close()
        slot = _Slot(index, process, ours)
        asyncio.get_running_loop().add_reader(ours.fileno(), self._on_readable, slot)
        return slot

    def _on_readable(self, slot: _Slot) -> None:
        try:
            while slot.connection.poll():
                event = slot.connection.recv()
                if event[0] == "finished":
                    slot.jobs.discard(event[1])
                self._on_event(event, slot.process.pid or 0)
        except (EOFError, OSError):
            self._died(slot)

    def _died(self, slot: _Slot) -> None:
        self._forget(slot)
        if self._closing:
            return
        slot.process.join(1)
        logger.error("recording process %s died (exit code %s); its %d recordings end",
                     slot.process.pid, slot.process.exitcode, len(slot.jobs))
        for job_id in slot.jobs:
            self._on_event(("finished", job_id, False, "recording process died"),
                           slot.process.pid or 0)
        self._slots[slot.index] = self._spawn(slot.index)

    def _forget(self, slot: _Slot) -> None:
        if not slot.connection.closed:
            asyncio.get_running_loop().remove_reader(slot.connection.fileno())
            slot.connection.close()

    def _send(self, slot: _Slot, message: StartJob | Command) -> None:
        try:
            slot.connection.send(message)
        except OSError:
            self._died(slot)
