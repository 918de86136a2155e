"""One recording's webhook events, put in the outbox (``outbox.py``) as they happen:
``egress_started`` once its first segment is on disk, ``egress_updated`` every
``UPDATE_EVERY`` seconds while it records (at a segment's end) and when it is finalized
(status ENDING), ``egress_ended`` once its upload is over (COMPLETE, or FAILED with the
reason). It watches the recording as its upload does (``recorder.recording.Upload``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..hls.writer import SegmentRecord
from ..layout import PLAYLIST_NAME
from .egress import (
    ACTIVE,
    COMPLETE,
    ENDED,
    ENDING,
    FAILED,
    STARTED,
    UPDATED,
    RecordingState,
    webhook_body,
)
from .outbox import Outbox

UPDATE_EVERY = 30.0  # seconds between egress_updated events while recording


class RecordingWebhooks:
    def __init__(self, outbox: Outbox, urls: tuple[str, ...], *, room: str,
                 room_id: Callable[[], str], participant: str) -> None:
        """``room_id``: the room's sid, known once the session has joined."""
        self._outbox, self._urls = outbox, urls
        self._room, self._room_id, self._participant = room, room_id, participant
        self._state: RecordingState | None = None
        self._updated_at = 0.0  # when the last event went out

    # --- the Upload protocol: what the recording does ------------------------------------

    def started(self, folder: Path) -> None:
        now = time.time()
        self._state = RecordingState(
            folder_name=folder.name, room_name=self._room, room_id=self._room_id(),
            participant=self._participant, status=ACTIVE, started_at=now, updated_at=now,
            playlist_location=str(folder / PLAYLIST_NAME))

    def segment_closed(self, segment: SegmentRecord, playlist: bytes) -> None:
        if self._state is None:
            return
        first = self._state.segment_count == 0
        self._state = replace(self._state, segment_count=self._state.segment_count + 1,
                              size=self._state.size + segment.bytes,
                              duration=self._state.duration + segment.duration)
        if first:
            self._send(STARTED)
        elif time.time() - self._updated_at >= UPDATE_EVERY:
            self._send(UPDATED)

    def thumbnail_made(self, name: str) -> None:
        """(Thumbnails are no event of their own.)"""

    def finished(self) -> None:
        if self._state is not None and self._state.segment_count:
            self._state = replace(self._state, status=ENDING)
            self._send(UPDATED)

    # --- after the upload ----------------------------------------------------------------

    def ended(self, summary: dict[str, Any]) -> None:
        """The recording is finalized and its upload over: ``summary`` is its
        ``recording.json`` (with ``upload`` when it went to S3)."""
        if self._state is None or not self._state.segment_count:
            return
        upload = summary.get("upload") or {}
        location = self._state.playlist_location
        if upload.get("complete"):
            location = f"s3://{upload['bucket']}/{upload['prefix'].rstrip('/')}/{PLAYLIST_NAME}"
        failure = str(summary.get("failure") or "")
        self._state = replace(
            self._state, status=FAILED if failure else COMPLETE, error=failure,
            ended_at=time.time(), playlist_location=location,
            duration=float(summary.get("duration", self._state.duration)),
            segment_count=len(summary.get("segments", ())) or self._state.segment_count)
        self._send(ENDED)

    def _send(self, event: str) -> None:
        assert self._state is not None
        now = time.time()
        self._updated_at = now
        self._state = replace(self._state, updated_at=now)
        body = webhook_body(event, self._state, event_id=f"EV_{uuid.uuid4().hex[:12]}",
                            created_at=int(now))
        for url in self._urls:
            self._outbox.put(url, body)


def closed_after_a_crash(outbox: Outbox, urls: tuple[str, ...], summary: dict[str, Any]) -> None:
    """``egress_ended`` (FAILED, with the reason) for a recording whose process died
    before it could say so, once the worker has closed it (``repair/close.py``)."""
    folder = Path(str(summary["folder"]))
    started = _unix(summary.get("started_at")) or time.time()
    segments = summary.get("segments") or []
    state = RecordingState(
        folder_name=folder.name, room_name=str(summary.get("room") or ""), room_id="",
        participant=str(summary.get("participant") or ""), status=FAILED,
        started_at=started, updated_at=time.time(),
        ended_at=_unix(summary.get("ended_at")) or time.time(),
        playlist_location=str(folder / PLAYLIST_NAME),
        duration=float(summary.get("duration") or 0.0),
        segment_count=len(segments), error=str(summary.get("ended_because") or ""))
    body = webhook_body(ENDED, state, event_id=f"EV_{uuid.uuid4().hex[:12]}",
                        created_at=int(time.time()))
    for url in urls:
        outbox.put(url, body)


def _unix(iso: object) -> float | None:
    try:
        return datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return None
