"""A recording process: runs the recordings the worker places on it.

The GIL binds one Python process to one core, so the worker spreads its recordings
over several of these. Each one talks to the worker over a pipe, in the messages of
``ipc.py``: ``StartJob`` and ``Command`` in, ``Progress`` (every second), ``Recorded``
and ``Finished`` (the job's outcome) out, and a ``Pong`` for each ``Ping``, answered
from the event loop so that the worker learns when the loop stops running. A
recording's failure ends only that recording; a process that dies takes only its own
recordings with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from multiprocessing.connection import Connection
from typing import Any, assert_never

from .. import logs
from ..config import S3Config
from ..room import express
from ..storage.storage import Storage
from . import ipc
from .ipc import Command, CommandOp, Finished, Outcome, Ping, Pong, Progress, Recorded, StartJob
from .session import RecordingSession

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL = 1.0
# Orphaned (the worker gone), a process finalizes its recordings and gives their
# uploads this long; what is left is found and finished by the next worker's recovery.
ORPHAN_GRACE = 30.0


def main(connection: Connection, progress: Any, log_level: str, log_format: str,
         s3: S3Config | None) -> None:
    """The process's entry point (``multiprocessing`` spawn target); ``progress``: a
    shared integer its socket reads advance, for the worker's watchdog."""
    logs.setup_logging(log_level, log_format)
    express.count_reads_in(progress)
    # A terminal's Ctrl-C and systemd's stop signal the whole process group; only the
    # worker acts on them, and tells this process (or its pipe closes) so that every
    # recording here is finalized rather than cut off.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    asyncio.run(RecordingProcess(connection, s3).serve())


class RecordingProcess:
    def __init__(self, connection: Connection, s3: S3Config | None) -> None:
        self._connection = connection
        self._s3 = s3
        self._storage: Storage | None = None
        self._sessions: dict[str, RecordingSession] = {}
        self._reported: dict[str, int] = {}  # recordings of a job sent to the worker
        self._tasks: set[asyncio.Task[None]] = set()
        self._done = asyncio.Event()
        self._shutting_down = False
        self._orphaned = False  # the worker died without telling us

    async def serve(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            if self._s3 is not None:
                self._storage = await stack.enter_async_context(Storage(self._s3))
            await self._serve()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self._connection.fileno(), self._on_readable)
        reporter = asyncio.create_task(self._report_progress())
        try:
            await self._done.wait()
            deadline = loop.time() + (ORPHAN_GRACE if self._orphaned else float("inf"))
            while self._tasks and loop.time() < deadline:
                await asyncio.wait(set(self._tasks), timeout=deadline - loop.time())
        finally:
            reporter.cancel()
            loop.remove_reader(self._connection.fileno())

    def _on_readable(self) -> None:
        try:
            while self._connection.poll():
                raw = self._connection.recv()
                message = ipc.to_process(raw)
                if message is None:
                    logger.error("the worker sent something unknown: %.200r", raw)
                else:
                    self._handle(message)
        except (EOFError, OSError):
            # The worker is gone: finalize everything; nobody is left to tell.
            asyncio.get_running_loop().remove_reader(self._connection.fileno())
            self._orphaned = True
            self._shutdown("worker process gone")

    def _handle(self, message: ipc.ToProcess) -> None:
        match message:
            case Ping(seq=seq):
                self._send(Pong(seq))
            case StartJob():
                self._start(message)
            case Command():
                self._command(message)
            case _:
                assert_never(message)

    def _command(self, command: Command) -> None:
        if command.op is CommandOp.SHUTDOWN:
            self._shutdown(command.reason or "agent shutting down")
            return
        session = self._sessions.get(command.job_id)
        if session is None:
            return
        match command.op:
            case CommandOp.ACTIVATE:
                session.activate()
            case CommandOp.STOP_RECORDING:
                session.stop_recording(command.reason or "stopped by request")
            case CommandOp.END:
                self._spawn(session.stop(command.reason or "stopped"))
            case _:
                assert_never(command.op)

    def _start(self, job: StartJob) -> None:
        if self._shutting_down:
            self._send(Finished.failed(job.job_id, "agent shutting down"))
            return
        session = RecordingSession(job.url, job.token, job.room, job.participant, job.options,
                                   repeatable=True, storage=self._storage)
        self._sessions[job.job_id] = session
        self._reported[job.job_id] = 0
        self._spawn(self._run(job, session))

    async def _run(self, job: StartJob, session: RecordingSession) -> None:
        log = logging.LoggerAdapter(logger, {"room": job.room, "participant": job.participant,
                                             "job_id": job.job_id})
        ok, error = True, ""
        try:
            await session.run()
        except Exception as exc:  # one recording's failure must not reach the others
            log.exception("recording failed")
            ok, error = False, f"{type(exc).__name__}: {exc}"
        finally:
            self._sessions.pop(job.job_id, None)
            self._report_recordings(job.job_id, session)
            del self._reported[job.job_id]
        failures = [s["failure"] for s in session.summaries if s.get("failure")]
        if ok and failures:
            ok, error = False, str(failures[-1])
        elif ok and not session.summaries:  # never a plain success: say why
            ok = not session.recorder.activated  # asked to record, and got nothing
            error = f"nothing was recorded: {session.recorder.nothing_recorded}"
        elif ok:
            error = "; ".join(f"video missing: {s['video_missing']['reason']}"
                              for s in session.summaries if s.get("video_missing"))
        self._send(Finished(job.job_id, Outcome.SUCCESS if ok else Outcome.FAILED, error))

    def _shutdown(self, reason: str) -> None:
        self._shutting_down = True
        for session in list(self._sessions.values()):
            self._spawn(session.stop(reason))
        self._done.set()

    async def _report_progress(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            progress: dict[str, dict[str, Any]] = {}
            for job_id, session in self._sessions.items():
                self._report_recordings(job_id, session)
                progress[job_id] = session.progress()
            failures = dict(self._storage.counters.failures) if self._storage else {}
            if progress or failures:
                self._send(Progress(progress, failures))

    def _report_recordings(self, job_id: str, session: RecordingSession) -> None:
        """Send the summaries of the job's recordings finalized since the last time."""
        for summary in session.summaries[self._reported[job_id]:]:
            self._send(Recorded(job_id, summary))
        self._reported[job_id] = len(session.summaries)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send(self, event: ipc.FromProcess) -> None:
        with contextlib.suppress(OSError):  # the worker is gone; the files say it all
            self._connection.send(event)
