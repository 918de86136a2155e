"""The recorder agent: takes JT_PUBLISHER jobs and runs one recording per job.

It owns the connection to the server (``connection.py``), the recording processes
(``pool.py``) and the table of jobs the HTTP API reads. Capacity is the CPU of its
processes (``load.py``): a job is promised when the server asks, with its expected cost
(so two requests in flight cannot both take the last of it), declined past
``LOAD_THRESHOLD``, and the worker reports itself full there or at ``MAX_RECORDINGS``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, assert_never

from livekit.protocol import agent, models

from ..config import Config
from ..metrics import Metrics
from ..notify.outbox import Outbox
from ..notify.recording_events import closed_after_a_crash
from ..notify.sender import WebhookSender, shown
from ..recorder.options import RecorderOptions
from ..repair.close import close_interrupted, interrupted_recordings
from . import protocol
from .connection import WorkerConnection
from .ipc import Command, CommandOp, Event, Finished, Outcome, Progress, Recorded, StartJob
from .load import LoadEstimate, TreeCpu, cpu_seconds_by_pid, expected_cost, process_tree
from .pool import RecordingProcesses

logger = logging.getLogger(__name__)

PROMISE_TTL = 15.0  # an availability promise the server never followed up on lapses
LOAD_INTERVAL = 2.5  # seconds between CPU samples (and load reports when it moved)
LOAD_STEP = 0.05  # a load change worth telling the server


@dataclass
class JobRecord:
    job_id: str
    room: str
    participant: str
    options: protocol.JobOptions
    pid: int = 0
    progress: dict[str, Any] = field(default_factory=dict)  # of the current recording
    recordings: int = 0  # finalized
    counted: dict[str, dict[str, Any]] = field(default_factory=dict)  # figures by folder
    decrypt_failures: int = 0  # counted so far (the session's, recording or not)

    def describe(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "room": self.room, "participant": self.participant,
                "record_audio": self.options.record_audio,
                "record_video": self.options.record_video, "process": self.pid,
                "recordings_finalized": self.recordings,
                **({"state": "connecting"} | self.progress)}


class RecorderAgent:
    """A ``ServerHandler``; see the module docstring."""

    def __init__(self, config: Config, *, log_level: str = "INFO") -> None:
        self.config = config
        self.metrics = Metrics()
        self.metrics.capacity.set(config.worker.max_recordings)
        self.jobs: dict[str, JobRecord] = {}
        self._promised: dict[str, float] = {}  # job id -> when promised
        self._draining = False
        self._all_ended = asyncio.Event()
        self._all_ended.set()
        self.connection = WorkerConnection(config.livekit_url, config.api_key,
                                           config.api_secret, config.agent_name, self)
        self.processes = RecordingProcesses(config.worker.processes, self._on_event,
                                            log_level=log_level, log_format=config.log_format,
                                            s3=config.s3)
        self._upload_failures: dict[int, dict[str, int]] = {}  # by process, as reported
        self._options = RecorderOptions.from_config(config)
        self._status_tasks: set[asyncio.Task[None]] = set()
        self._load = LoadEstimate(len(os.sched_getaffinity(0)))
        self._cpu = TreeCpu()
        self._reported: tuple[bool, float] = (False, 0.0)  # (full, load) last sent

    # --- running -----------------------------------------------------------------------

    async def run(self) -> None:
        """Take jobs until ``shutdown()``; meanwhile finish the uploads that an earlier
        run left undone."""
        self.processes.start()
        closed = self._close_interrupted()
        recovery = (asyncio.create_task(self._recover_uploads(closed))
                    if self.config.s3 is not None else None)
        watching = asyncio.create_task(self._watch_load())
        sending = None
        if self.config.webhook_urls:
            logger.info("webhooks to %s", ", ".join(map(shown, self.config.webhook_urls)))
            sending = asyncio.create_task(self._webhooks().run())
        try:
            await self.connection.run()
        finally:
            watching.cancel()
            if sending is not None:
                sending.cancel()
            if recovery is not None:
                recovery.cancel()

    async def _watch_load(self) -> None:
        """Sample the CPU of the worker's processes; tell the server when the load moved."""
        while True:
            now = time.monotonic()
            used = await asyncio.to_thread(_cpu_by_pid, self.processes.pids())
            self._load.sample(self._cpu.read(used), now)
            self.metrics.cpu.set(round(self._load.measured(), 3))
            load = self._load.load(now)
            self.metrics.load.set(round(load, 3))
            full, last = self._reported
            if self._is_full(now) != full or abs(load - last) >= LOAD_STEP:
                self._report_status()
            await asyncio.sleep(LOAD_INTERVAL)

    def _webhooks(self) -> WebhookSender:
        def delivered(waited: float) -> None:
            self.metrics.webhooks.inc()
            self.metrics.webhook_delay.set(round(waited, 3))

        return WebhookSender(Outbox(self.config.output_dir), self.config.api_key,
                             self.config.api_secret, on_delivered=delivered,
                             on_failed=self.metrics.webhook_failures.inc)

    def _close_interrupted(self) -> list[Path]:
        """Close the recordings an earlier run was killed in the middle of: the
        segments on disk are a recording (``repair/close.py``), to be uploaded too."""
        closed = []
        for folder in interrupted_recordings(self.config.output_dir):
            try:
                summary = close_interrupted(folder)
            except OSError as exc:
                logger.error("could not close %s, cut short by an earlier run: %s", folder, exc)
                continue
            if summary is not None:
                logger.warning("closed %s, cut short by an earlier run: %d segments, %.1f s",
                               folder, len(summary["segments"]), summary["duration"])
                closed.append(folder)
                if self.config.webhook_urls:
                    closed_after_a_crash(Outbox(self.config.output_dir),
                                         self.config.webhook_urls, summary)
        return closed

    async def _recover_uploads(self, closed: list[Path]) -> None:
        from ..storage.storage import Storage  # botocore: only with S3 (its processes' too)
        assert self.config.s3 is not None
        async with Storage(self.config.s3) as storage:
            await storage.recover(self.config.output_dir, closed)
            self._count_upload_failures(0, storage.counters.failures)

    @property
    def ready(self) -> bool:
        return self.connection.registered and not self._draining

    async def shutdown(self) -> bool:
        """Stop taking jobs, finalize every recording, leave. True if every recording
        ended within the configured deadline."""
        self._draining = True
        timeout = self.config.worker.shutdown_timeout
        logger.info("shutting down: finalizing %d recordings (at most %.0f s)",
                    len(self.jobs), timeout)
        await self.connection.send(self.status())
        for job_id in list(self.jobs):
            self.processes.command(Command(CommandOp.END, job_id, "agent shutting down"))
        started = asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(self._all_ended.wait(), timeout)
        except TimeoutError:
            logger.error("%d recordings did not finish within SHUTDOWN_TIMEOUT",
                         len(self.jobs))
        remaining = max(1.0, timeout - (asyncio.get_running_loop().time() - started))
        clean = await self.processes.close(remaining) and not self.jobs
        await asyncio.gather(*self._status_tasks, return_exceptions=True)
        await self.connection.close()
        return clean

    # --- what the HTTP API asks ---------------------------------------------------------

    def recordings(self) -> list[dict[str, Any]]:
        return [job.describe() for job in self.jobs.values()]

    def control(self, room: str, participant: str, op: str) -> JobRecord | None:
        """``activate`` or ``stop`` the recording of ``participant`` in ``room``."""
        for job in self.jobs.values():
            if job.room == room and job.participant == participant:
                command = CommandOp.ACTIVATE if op == "activate" else CommandOp.STOP_RECORDING
                self.processes.command(Command(command, job.job_id, "stopped by request"))
                return job
        return None

    # --- ServerHandler -----------------------------------------------------------------

    def registered(self, worker_id: str) -> None:
        self.metrics.registered.set(1)

    def disconnected(self) -> None:
        self.metrics.registered.set(0)
        self._promised.clear()

    def status(self) -> agent.WorkerMessage:
        now = time.monotonic()
        full, load = self._is_full(now), self._load.load(now)
        self._reported = (full, load)
        return protocol.worker_status(self._job_count(), load, full=full,
                                      draining=self._draining)

    def _is_full(self, now: float) -> bool:
        return (self._job_count() >= self.config.worker.max_recordings
                or self._load.load(now) >= self.config.worker.load_threshold)

    def availability(self, request: agent.AvailabilityRequest) -> agent.WorkerMessage:
        job = request.job
        publisher = job.participant.identity
        now = time.monotonic()
        cost = expected_cost(
            (t.mime_type.lower() for t in job.participant.tracks
             if t.type == models.TrackType.VIDEO), self._options.format.passthrough_video)
        # A worker with no job takes one whatever it costs: a threshold set too low must
        # not leave every job unrecorded.
        busy = self._job_count() > 0 and not self._load.admits(
            cost, self.config.worker.load_threshold, now)
        if self._draining or self._job_count() >= self.config.worker.max_recordings or busy:
            reason = ("shutting down" if self._draining else
                      f"load {self._load.load(now):.2f} + {cost:g} cores expected"
                      if busy else "full")
            logger.info("declining job %s (%s in %s): %s", job.id, publisher, job.room.name,
                        reason)
            return protocol.availability(job, available=False)
        self._promised[job.id] = now
        self._load.reserve(job.id, cost, now)
        return protocol.availability(
            job, available=True, identity=protocol.agent_identity(self.config.agent_name,
                                                                  publisher),
            name="HLS recorder")

    def assignment(self, assignment: agent.JobAssignment) -> None:
        job = assignment.job
        self._promised.pop(job.id, None)
        options, warning = protocol.parse_job_metadata(job.metadata)
        record = JobRecord(job.id, job.room.name, job.participant.identity, options)
        log = logging.LoggerAdapter(logger, {"room": record.room,
                                             "participant": record.participant,
                                             "job_id": job.id})
        if warning:
            log.warning("%s (metadata %r)", warning, job.metadata[:200])
        if self._draining:
            self._report(job.id, agent.JobStatus.JS_FAILED, "agent shutting down")
            return
        self.jobs[job.id] = record
        self.metrics.jobs_active.set(len(self.jobs))
        self._all_ended.clear()
        record.pid = self.processes.start_job(StartJob(
            job_id=job.id, url=assignment.url or self.config.livekit_url,
            token=assignment.token, room=record.room, participant=record.participant,
            options=replace(self._options, expected_kinds=options.kinds)))
        log.info("job taken (recording %s) in process %d",
                 "+".join(sorted(options.kinds)), record.pid)
        self._report_status()

    def termination(self, job_id: str) -> None:
        self.processes.command(Command(CommandOp.END, job_id, "job terminated by the server"))

    # --- events from the recording processes --------------------------------------------

    def _on_event(self, event: Event, source: int) -> None:
        match event:
            case Progress():
                self._progress(event, source)
            case Recorded(job_id=job_id, summary=summary):
                if (job := self.jobs.get(job_id)) is not None:
                    self._recorded(job, summary)
            case Finished():
                self._finished(event)
            case _:
                assert_never(event)

    def _progress(self, event: Progress, source: int) -> None:
        self._count_upload_failures(source, event.upload_failures)
        for job_id, progress in event.jobs.items():
            if (job := self.jobs.get(job_id)) is not None:
                job.progress = progress
                self._count(job, progress)
        self._count_active()

    def _count_active(self) -> None:
        self.metrics.active.set(sum(job.progress.get("state") == "recording"
                                    for job in self.jobs.values()))

    def _count_upload_failures(self, source: int, failures: dict[str, int]) -> None:
        before = self._upload_failures.get(source, {})
        for cause, count in failures.items():
            self.metrics.upload_failures.labels(cause).inc(max(0, count - before.get(cause, 0)))
        self._upload_failures[source] = dict(failures)

    def _count(self, job: JobRecord, figures: dict[str, Any]) -> None:
        """Add to the counters what a recording wrote since it was last counted."""
        failures = figures.get("decrypt_failures", 0)  # a wrong key may record nothing
        self.metrics.decrypt_failures.inc(max(0, failures - job.decrypt_failures))
        job.decrypt_failures = max(job.decrypt_failures, failures)
        folder = figures.get("folder")
        if folder is None:
            return
        receive = figures.get("receive", {})
        figures = {**figures, "packets_lost": receive.get("packets_lost", 0),
                   "packets_recovered": (receive.get("packets_recovered", 0)
                                         + receive.get("red_recovered", 0)),
                   "video_frames_lost": receive.get("video_frames_lost", 0)}
        before = job.counted.get(folder, {})
        for name, counter in (("segments", self.metrics.segments),
                              ("bytes", self.metrics.bytes),
                              ("keyframe_requests", self.metrics.keyframe_requests),
                              ("packets_lost", self.metrics.packets_lost),
                              ("packets_recovered", self.metrics.packets_recovered),
                              ("video_frames_lost", self.metrics.video_frames_lost)):
            counter.inc(max(0, figures.get(name, 0) - before.get(name, 0)))
        job.counted[folder] = figures

    def _recorded(self, job: JobRecord, summary: dict[str, Any]) -> None:
        segments = summary.get("segments", [])
        self._count(job, {"folder": summary["folder"], "segments": len(segments),
                          "bytes": sum(s["bytes"] for s in segments),
                          "keyframe_requests": summary.get("keyframe_requests", 0),
                          "receive": summary.get("receive", {})})
        job.recordings += 1
        if summary.get("video_missing"):
            self.metrics.tracks_missing.labels("video", "no keyframe").inc()
        logger.info("recording finalized: %s", _describe_summary(summary),
                    extra={"room": job.room, "participant": job.participant,
                           "job_id": job.job_id})

    def _finished(self, event: Finished) -> None:
        job = self.jobs.pop(event.job_id, None)
        self._load.release(event.job_id)
        if job is None:
            return
        self.metrics.jobs.labels(event.outcome.value).inc()
        self.metrics.jobs_active.set(len(self.jobs))
        self._count_active()
        extra = {"room": job.room, "participant": job.participant, "job_id": job.job_id}
        if event.outcome is Outcome.SUCCESS:
            logger.info("job ended after %d recordings%s", job.recordings,
                        f" ({event.error})" if event.error else "", extra=extra)
            status = agent.JobStatus.JS_SUCCESS
        else:
            logger.error("job failed: %s", event.error, extra=extra)
            status = agent.JobStatus.JS_FAILED
        self._report(job.job_id, status, event.error)
        self._report_status()
        if not self.jobs:
            self._all_ended.set()

    # --- reporting ---------------------------------------------------------------------

    def _job_count(self) -> int:
        now = time.monotonic()
        for job_id, promised_at in list(self._promised.items()):
            if now - promised_at > PROMISE_TTL:
                del self._promised[job_id]
                self._load.release(job_id)
        return len(self.jobs) + len(self._promised)

    def _report(self, job_id: str, status: agent.JobStatus, error: str) -> None:
        self._send(protocol.job_status(job_id, status, error))

    def _report_status(self) -> None:
        self._send(self.status())

    def _send(self, message: agent.WorkerMessage) -> None:
        task = asyncio.get_running_loop().create_task(self.connection.send(message))
        self._status_tasks.add(task)
        task.add_done_callback(self._status_tasks.discard)


def _describe_summary(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "nothing was recorded"
    return (f"{len(summary['segments'])} segments, {summary['duration']:.1f} s in "
            f"{summary['folder']} ({summary['ended_because']})")


def _cpu_by_pid(recording_processes: list[int]) -> dict[int, float]:
    """The worker's, its recording processes' and their transcoders': not every
    descendant of the worker's, which may be a test's own servers."""
    return cpu_seconds_by_pid([os.getpid(), *process_tree(recording_processes)])
