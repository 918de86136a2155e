"""The worker's recording processes: started up front, one job placed on the least
busy, replaced when one dies or stops answering its pings (its jobs are reported
failed, the others go on)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from ..config import S3Config
from . import ipc
from .ipc import Command, CommandOp, Event, Finished, Pong, StartJob, ToProcess
from .liveness import PING_INTERVAL, PING_TIMEOUT, STARTUP_TIMEOUT, Liveness

logger = logging.getLogger(__name__)

# Forked from a server process that imported the media stack once (PyAV, aiortc, numpy:
# some 90 MB): each recording process starts at once and shares those pages with the
# others, and the worker itself never loads them. Not forked from the worker: a fork of
# a process running an event loop and threads inherits their state half-way.
RECORDING_PROCESS = "publisher_hls_agent.worker.recording_process"
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload([RECORDING_PROCESS])


def _process_main(*args: object) -> None:
    """The recording process's entry (a reference the worker can pass without
    importing the module)."""
    from .recording_process import main
    main(*args)  # type: ignore[arg-type]

EventHandler = Callable[[Event, int], None]  # (event, the process's pid)


class _Slot:
    def __init__(self, index: int, process: BaseProcess, connection: Connection,
                 liveness: Liveness, progress: Any) -> None:
        self.index = index
        self.process = process
        self.connection = connection
        self.liveness = liveness
        self.progress = progress  # shared with the process (Liveness.progress)
        self.jobs: set[str] = set()

    @property
    def pid(self) -> int:
        return self.process.pid or 0


class RecordingProcesses:
    def __init__(self, count: int, on_event: EventHandler, *, log_level: str,
                 log_format: str, s3: S3Config | None, ping_interval: float = PING_INTERVAL,
                 ping_timeout: float = PING_TIMEOUT,
                 startup_timeout: float = STARTUP_TIMEOUT) -> None:
        self._count = count
        self._on_event = on_event
        self._process_args = (log_level, log_format, s3)
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._startup_timeout = startup_timeout
        self._slots: list[_Slot] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._slots = [self._spawn(index) for index in range(self._count)]
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    def start_job(self, job: StartJob) -> int:
        """Place the job on the process with the fewest; returns that process's pid."""
        slot = min(self._slots, key=lambda candidate: len(candidate.jobs))
        slot.jobs.add(job.job_id)
        self._send(slot, job)
        return slot.pid

    def command(self, command: Command) -> None:
        for slot in list(self._slots):
            if command.job_id in slot.jobs:
                self._send(slot, command)

    def pids(self) -> list[int]:
        return [slot.process.pid for slot in self._slots if slot.process.pid]

    async def close(self, seconds: float) -> bool:
        """Ask every process to finalize its recordings and exit; True if all did
        within ``seconds`` (the rest are killed)."""
        self._closing = True
        if self._supervisor is not None:
            # Finalizing may keep a loop busy; the deadline here is what bounds it.
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for slot in self._slots:
            self._send(slot, Command(CommandOp.SHUTDOWN))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        clean = True
        for slot in self._slots:
            remaining = max(0.0, deadline - loop.time())
            await loop.run_in_executor(None, slot.process.join, remaining)
            if slot.process.is_alive():
                logger.error("recording process %s did not finish in time; killing it",
                             slot.pid)
                slot.process.kill()
                clean = False
            self._forget(slot)
        return clean

    def _spawn(self, index: int) -> _Slot:
        ours, theirs = _CONTEXT.Pipe()
        progress = _CONTEXT.RawValue(ctypes.c_uint64, 0)
        process = _CONTEXT.Process(target=_process_main, name=f"recording-{index}",
                                   args=(theirs, progress, *self._process_args),
                                   daemon=False)
        process.start()
        theirs.close()
        loop = asyncio.get_running_loop()
        slot = _Slot(index, process, ours,
                     Liveness(loop.time(), timeout=self._ping_timeout,
                              startup_timeout=self._startup_timeout), progress)
        loop.add_reader(ours.fileno(), self._on_readable, slot)
        return slot

    async def _supervise(self) -> None:
        """Ping every process each interval; one that leaves its pings unanswered is
        killed and handled as one that died."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._ping_interval)
            for slot in list(self._slots):
                try:
                    self._check(slot, loop)
                except Exception:  # supervision must outlive one process's trouble
                    logger.exception("supervising recording process %s", slot.pid)

    def _check(self, slot: _Slot, loop: asyncio.AbstractEventLoop) -> None:
        # Answers already in the pipe count, however late this loop looks.
        self._on_readable(slot)
        if slot.connection.closed:
            return  # it died meanwhile, and was replaced
        now = loop.time()
        slot.liveness.progress(slot.progress.value, now)
        if slot.liveness.unresponsive(now):
            self._kill_unresponsive(slot, slot.liveness.waiting(now))
        else:
            self._send(slot, slot.liveness.ping(now))

    def _kill_unresponsive(self, slot: _Slot, waited: float) -> None:
        logger.error("recording process %s stopped answering (a ping unanswered for "
                     "%.1f s); killing it", slot.pid, waited)
        # SIGKILL: the process ignores SIGTERM, and a stopped one would not act on it.
        slot.process.kill()
        self._died(slot, f"recording process {slot.pid} stopped answering")

    def _on_readable(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not slot.connection.closed and slot.connection.poll():
                raw = slot.connection.recv()
                message = ipc.from_process(raw)
                if message is None:
                    logger.error("recording process %s sent something unknown: %.200r",
                                 slot.pid, raw)
                elif isinstance(message, Pong):
                    self._answered(slot, message, loop.time())
                else:
                    if isinstance(message, Finished):
                        slot.jobs.discard(message.job_id)
                    self._on_event(message, slot.pid)
        except (EOFError, OSError):
            self._died(slot)

    def _answered(self, slot: _Slot, pong: Pong, now: float) -> None:
        slow = slot.liveness.pong(pong, now)
        if slow is not None:
            logger.warning("recording process %s answered a ping after %.1f s", slot.pid,
                           slow)

    def _died(self, slot: _Slot, reason: str | None = None) -> None:
        """The process is gone (or, with a ``reason``, was killed for it): its jobs
        fail and a fresh process takes its place."""
        if slot.connection.closed:
            return  # already handled, or the pool is closing
        self._forget(slot)
        if self._closing:
            return
        slot.process.join(1)
        logger.error("recording process %s %s (exit code %s); its %d recordings end",
                     slot.pid, "was killed" if reason else "died", slot.process.exitcode,
                     len(slot.jobs))
        for job_id in slot.jobs:
            self._on_event(Finished.failed(job_id, reason or "recording process died"),
                           slot.pid)
        self._slots[slot.index] = self._spawn(slot.index)

    def _forget(self, slot: _Slot) -> None:
        if not slot.connection.closed:
            asyncio.get_running_loop().remove_reader(slot.connection.fileno())
            slot.connection.close()

    def _send(self, slot: _Slot, message: ToProcess) -> None:
        try:
            slot.connection.send(message)
        except OSError:
            self._died(slot)
