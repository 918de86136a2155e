"""A recording session: a room client feeding a recorder, for one participant."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..hls.writer import SegmentRecord
from ..media.rtp import SenderReport
from ..media.transcode import EncoderSettings
from ..notify.outbox import Outbox
from ..notify.recording_events import RecordingWebhooks
from ..recorder.options import RecorderOptions
from ..recorder.recorder import Recorder
from ..recorder.recording import Upload
from ..room.client import RoomClient
from ..room.rpc import RpcMethod
from ..room.tracks import decrypt_failures, receive_figures
from ..storage.storage import Storage
from ..storage.uploader import RecordingUpload

logger = logging.getLogger(__name__)


RPC_STOP_GRACE = 0.5  # seconds for an RPC answer to leave before the connection closes


class Observers:
    """Several watchers of one recording's files, as one (``recording.Upload``)."""

    def __init__(self, observers: Sequence[Upload]) -> None:
        self._observers = observers

    def started(self, folder: Path) -> None:
        for observer in self._observers:
            observer.started(folder)

    def segment_closed(self, segment: SegmentRecord, playlist: bytes) -> None:
        for observer in self._observers:
            observer.segment_closed(segment, playlist)

    def thumbnail_made(self, name: str) -> None:
        for observer in self._observers:
            observer.thumbnail_made(name)

    def finished(self) -> None:
        for observer in self._observers:
            observer.finished()


class RecordingSession:
    """Records ``identity`` in ``room`` until the participant leaves, ``stop()`` or the
    room closes. (A participant who comes back is a new job: LiveKit dispatches one each
    time a participant starts publishing.)

    ``stop_recording()`` ends the recording; with ``repeatable`` (as the worker runs it)
    the session then waits for another activation, which starts a new recording, and
    without it the session ends.

    Room participants may call ``activate_recording`` and ``stop_recording`` on the
    session's own participant (LiveKit RPC), unless ``answer_rpc`` is off.
    """

    def __init__(self, url: str, token: str, room: str, identity: str,
                 options: RecorderOptions, *, answer_rpc: bool = True,
                 repeatable: bool = False, storage: Storage | None = None) -> None:
        self.room, self.identity, self.options = room, identity, options
        self._storage = storage
        self._uploads: list[tuple[RecordingUpload, dict[str, Any]]] = []
        self._upload: RecordingUpload | None = None  # the current recording's
        self._events: RecordingWebhooks | None = None  # the current recording's
        self._ending: list[tuple[RecordingWebhooks, dict[str, Any]]] = []  # after uploads
        self._receive_baseline: dict[str, int] = {}  # the figures when the recording began
        self.recorder = self._new_recorder(options)
        self.summaries: list[dict[str, Any]] = []  # of the recordings finalized
        rpc: dict[str, RpcMethod] = {"activate_recording": self._rpc_activate,
                                     "stop_recording": self._rpc_stop}
        self.client = RoomClient(url, token, identity, self.recorder,
                                 kinds=options.expected_kinds,
                                 passthrough_video=options.format.passthrough_video,
                                 rpc_methods=rpc if answer_rpc else None,
                                 spill_dir=options.output_dir,
                                 transcoding=EncoderSettings(
                                     options.transcode_preset,
                                     keyframe_every=options.segment_duration),
                                 e2ee=options.e2ee)
        self._repeatable = repeatable
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop_reason = "participant left"
        self._stopping = False
        self._log = logging.LoggerAdapter(logger, {"room": room, "participant": identity})

    def activate(self) -> None:
        self.recorder.activate()

    async def run(self) -> dict[str, Any] | None:
        """Record until the session ends; the summary of the last recording, or None if
        nothing was recorded (every recording's is in ``summaries``)."""
        try:
            await self.client.run()
        finally:
            await self.client.close()  # (the tracks end: transcoders finish their backlog)
            await self.client.transcoders_caught_up(self.options.catch_up_within)
            self._finalize(self._stop_reason)
            for task in self._tasks:
                task.cancel()
            await self._wait_for_uploads()
        return self.summaries[-1] if self.summaries else None

    async def _wait_for_uploads(self) -> None:
        """Each recording's summary says which of its objects are in the bucket; an
        upload that failed for good makes the recording a failure, with the reason.
        Then its ``egress_ended`` event goes out."""
        try:
            await self._uploads_done()
        finally:
            for events, summary in self._ending:
                events.ended(summary)
            self._ending.clear()

    async def _uploads_done(self) -> None:
        for upload, summary in self._uploads:
            result = await upload.wait()
            if result is None:
                continue
            summary["upload"] = result
            if "error" in result and "failure" not in summary:
                summary["failure"] = f"upload failed: {result['error']}"
            elif result["complete"]:
                self._log.info("uploaded to s3://%s/%s: %s", result["bucket"],
                               result["prefix"], ", ".join(o.rsplit("/", 1)[-1]
                                                          for o in result["objects"]))

    async def stop(self, reason: str = "stopped") -> None:
        """End the session (and its recording). The first reason given is the one the
        recording keeps: a worker shutting down makes the session leave the room, and
        the server's termination of the job that follows is not why it ended."""
        if not self._stopping:
            self._stopping, self._stop_reason = True, reason
        await self.client.close()

    @property
    def stop_reason(self) -> str:
        """Why the session ends, or will ("participant left" unless told otherwise)."""
        return self._stop_reason

    def stop_recording(self, reason: str = "stopped by request") -> None:
        """Finalize the recording; see the class docstring for what follows."""
        if not self._repeatable:
            self._spawn(self.stop(reason))
            return
        self._finalize(reason)
        self.recorder = self._new_recorder(replace(self.options, auto_activate=False))
        self.client.replace_consumer(self.recorder)

    def _finalize(self, reason: str) -> None:
        summary = self.recorder.finalize(reason, self._receive_stats())
        self._receive_baseline = receive_figures(self.client.readers())
        if summary is not None and (not self.summaries or self.summaries[-1] is not summary):
            self.summaries.append(summary)
            if self._upload is not None:
                self._uploads.append((self._upload, summary))
            if self._events is not None and self._upload is not None:
                self._ending.append((self._events, summary))  # once uploaded
            elif self._events is not None:
                self._events.ended(summary)

    def _new_recorder(self, options: RecorderOptions) -> Recorder:
        """A recorder, with the observers of what it writes: its upload, its webhooks."""
        self._upload = (self._storage.for_recording(self.room, self.identity)
                        if self._storage is not None else None)
        self._events = (RecordingWebhooks(
            Outbox(options.output_dir), options.webhook_urls, room=self.room,
            room_id=lambda: self.client.room_sid, participant=self.identity)
            if options.webhook_urls else None)
        observers: list[Upload] = [o for o in (self._upload, self._events) if o is not None]
        return Recorder(self.room, self.identity, options,
                        request_keyframe=self._request_keyframe,
                        sender_report=self._sender_report,
                        end_recording=self._end_recording,
                        upload=observers[0] if len(observers) == 1 else
                        Observers(observers) if observers else None)

    async def _rpc_activate(self, caller: str, payload: str) -> str:
        self._log.info("activation requested by RPC from %r", caller)
        self.activate()
        return self._rpc_answer()

    async def _rpc_stop(self, caller: str, payload: str) -> str:
        self._log.info("stop requested by RPC from %r", caller)
        folder = self.recorder.folder
        if self._repeatable:
            self.stop_recording("stopped by request")
        else:  # the session ends: give the answer time to leave first
            self._stop_reason = "stopped by request"
            asyncio.get_running_loop().call_later(RPC_STOP_GRACE, self._end_recording,
                                                  "stopped by request")
        return json.dumps({"participant": self.identity, "state": "stopped",
                           "folder": str(folder) if folder else None})

    def _rpc_answer(self) -> str:
        folder = self.recorder.folder
        return json.dumps({"participant": self.identity,
                           "state": self.recorder.state.name.lower(),
                           "folder": str(folder) if folder else None})

    def progress(self) -> dict[str, Any]:
        """The recording's progress and what the network did to it so far."""
        return {**self.recorder.progress(), **self._receive_stats(),
                "decrypt_failures": decrypt_failures(self.client.readers())}

    def _receive_stats(self) -> dict[str, Any]:
        """The receive figures of the current recording (the session's since it began)."""
        totals = receive_figures(self.client.readers())
        return {"receive": {name: value - self._receive_baseline.get(name, 0)
                            for name, value in totals.items()}}

    def _request_keyframe(self) -> None:
        self._spawn(self.client.request_keyframe())

    def _end_recording(self, reason: str) -> None:
        self._spawn(self.stop(reason))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _sender_report(self, track_sid: str) -> SenderReport | None:
        return self.client.sender_report(track_sid)
