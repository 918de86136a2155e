"""A recording session: a room client feeding a recorder, for one participant."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any

from ..media.rtp import SenderReport
from ..room.client import RoomClient
from ..room.rpc import RpcMethod
from ..room.tracks import H264Reader, OpusReader
from .recorder import Recorder, RecorderOptions

logger = logging.getLogger(__name__)


RPC_STOP_GRACE = 0.5  # seconds for an RPC answer to leave before the connection closes


class RecordingSession:
    """Records ``identity``; room participants may call ``activate_recording`` and
    ``stop_recording`` on the session's own participant (LiveKit RPC), unless
    ``answer_rpc`` is off."""

    def __init__(self, url: str, token: str, room: str, identity: str,
                 options: RecorderOptions, *, answer_rpc: bool = True) -> None:
        self.recorder = Recorder(room, identity, options,
                                 request_keyframe=self._request_keyframe,
                                 sender_report=self._sender_report,
                                 end_recording=self._end_recording)
        rpc: dict[str, RpcMethod] = {"activate_recording": self._rpc_activate,
                                     "stop_recording": self._rpc_stop}
        self.client = RoomClient(url, token, identity, self.recorder,
                                 kinds=options.expected_kinds,
                                 rpc_methods=rpc if answer_rpc else None)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop_reason = "participant left"

    def activate(self) -> None:
        self.recorder.activate()

    async def run(self) -> dict[str, Any] | None:
        """Record until the participant leaves or ``stop()``; return the summary."""
        try:
            await self.client.run()
        finally:
            summary = self.recorder.finalize(self._stop_reason, self._receive_stats())
            await self.client.close()
            for task in self._tasks:
                task.cancel()
        return summary

    async def stop(self, reason: str = "stopped") -> None:
        self._stop_reason = reason
        await self.client.close()

    async def _rpc_activate(self, caller: str, payload: str) -> str:
        logger.info("activation requested by RPC from %r", caller,
                    extra={"room": self.recorder.room, "participant": self.recorder.participant})
        self.activate()
        return self._rpc_answer()

    async def _rpc_stop(self, caller: str, payload: str) -> str:
        logger.info("stop requested by RPC from %r", caller,
                    extra={"room": self.recorder.room, "participant": self.recorder.participant})
        self._stop_reason = "stopped by request"
        asyncio.get_running_loop().call_later(RPC_STOP_GRACE, self._end_recording,
                                              "stopped by request")
        return self._rpc_answer()

    def _rpc_answer(self) -> str:
        return json.dumps({"participant": self.recorder.participant,
                           "state": self.recorder.state.name.lower(),
                           "folder": str(self.recorder.folder) if self.recorder.folder else None})

    def _receive_stats(self) -> dict[str, Any]:
        lost = late = 0
        for sid in self.recorder.tracks:
            reader = self.client.reader(sid)
            if isinstance(reader, H264Reader):
                lost += reader.frames_dropped + reader.stats.broken_frames
                late += reader.packets_late
            elif isinstance(reader, OpusReader):
                late += reader.late_packets
        return {"receive": {"video_frames_lost": lost, "packets_late": late}}

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
