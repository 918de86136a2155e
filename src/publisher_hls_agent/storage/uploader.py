"""One recording's upload: in real time (each segment as it closes) or in one batch
after the recording ends, losing nothing.

Order is what keeps the bucket valid at every instant: a segment (and the init
segment before the first) goes up before any playlist that names it, the playlist
uploaded after a segment is the snapshot the writer made when that segment closed
(never a later one naming segments not yet there), ``recording.json`` before the final
playlist, and the final playlist, with ENDLIST, last.

Progress is kept in ``.upload.json`` in the recording's folder, written atomically
after every confirmed object, so an agent that restarts finds what is left
(``recovery.py``). Network and server failures are retried with capped exponential
backoff and jitter for as long as they last; a store that refuses the credentials or
lacks the bucket ends the upload with that reason, the files staying on disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UploadError
from ..hls.files import atomic_write
from ..hls.writer import SegmentRecord
from ..layout import (
    INIT_GLOB,
    PLAYLIST_NAME,
    SEGMENT_GLOB,
    SUMMARY_NAME,
    THUMBNAILS_FOLDER,
    THUMBNAILS_PLAYLIST,
    UPLOAD_STATE_NAME,
)
from .keys import content_type
from .s3 import S3Store

logger = logging.getLogger(__name__)

BACKOFF_FIRST, BACKOFF_CAP = 0.5, 30.0


@dataclass
class UploadState:
    """What ``.upload.json`` holds."""

    bucket: str
    prefix: str
    uploaded: dict[str, int] = field(default_factory=dict)  # file name -> bytes
    complete: bool = False
    error: str | None = None

    @classmethod
    def load(cls, folder: Path) -> UploadState | None:
        try:
            data = json.loads((folder / UPLOAD_STATE_NAME).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def save(self, folder: Path) -> None:
        atomic_write(folder / UPLOAD_STATE_NAME, json.dumps(self.__dict__, indent=1).encode())

    def result(self) -> dict[str, Any]:
        """For the job's summary: which objects are in the bucket."""
        return {"bucket": self.bucket, "prefix": self.prefix, "complete": self.complete,
                "objects": sorted(self.prefix + name for name in self.uploaded),
                **({"error": self.error} if self.error else {})}


class Counters:
    """Uploads of this process, for the worker's metrics."""

    def __init__(self) -> None:
        self.objects = 0
        self.bytes = 0
        self.failures: dict[str, int] = {}

    def failed(self, cause: str) -> None:
        self.failures[cause] = self.failures.get(cause, 0) + 1


class RecordingUpload:
    def __init__(self, store: S3Store, counters: Counters, prefix_for: Callable[[Path], str],
                 *, realtime: bool, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self._store = store
        self._counters = counters
        self._prefix_for = prefix_for
        self.realtime = realtime
        self._sleep = sleep  # tests shorten the backoff
        # A segment and the playlist naming it, or a thumbnail (its playlist is on disk).
        self._queue: asyncio.Queue[tuple[str, bytes | None] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.folder: Path | None = None
        self.state: UploadState | None = None

    # --- what the recorder says (on the event loop; never blocks) -----------------------

    def started(self, folder: Path) -> None:
        self.folder = folder
        self.state = UploadState(self._store.config.bucket, self._prefix_for(folder))
        self.state.save(folder)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def segment_closed(self, segment: SegmentRecord, playlist: bytes) -> None:
        if self.realtime:
            self._queue.put_nowait((segment.name, playlist))

    def thumbnail_made(self, name: str) -> None:
        if self.realtime:
            self._queue.put_nowait((name, None))

    def finished(self) -> None:
        self._queue.put_nowait(None)

    async def wait(self) -> dict[str, Any] | None:
        """Until everything is in the bucket or the upload gave up; its result."""
        if self._task is None or self.state is None:
            return None
        await asyncio.shield(self._task)
        return self.state.result()

    @classmethod
    def resuming(cls, store: S3Store, counters: Counters, folder: Path,
                 state: UploadState) -> RecordingUpload:
        """The upload of a finished recording, from where ``state`` says it stands."""
        upload = cls(store, counters, lambda _: state.prefix, realtime=False)
        upload.folder, upload.state = folder, state
        return upload

    async def upload_rest(self, progress: Callable[[str, int], None] | None = None) -> None:
        assert self.folder is not None and self.state is not None
        await upload_rest(self.folder, self.state, self.put, progress)

    # --- the work -------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self.folder is not None and self.state is not None
        try:
            while (item := await self._queue.get()) is not None:
                name, playlist = item
                if playlist is None:  # a thumbnail, then its playlist as it is now
                    await self._put_file(name)
                    thumbnails = f"{THUMBNAILS_FOLDER}/{THUMBNAILS_PLAYLIST}"
                    data = await asyncio.to_thread((self.folder / thumbnails).read_bytes)
                    await self.put(thumbnails, data, record=False)  # again at the end
                    continue
                await self._put_segment(name)
                await self.put(PLAYLIST_NAME, playlist, record=False)
            await self.upload_rest()
        except UploadError as exc:
            self.state.error = str(exc)
            self.state.save(self.folder)
            logger.error("upload of %s to s3://%s/%s stopped: %s; the recording stays on "
                         "disk", self.folder, self.state.bucket, self.state.prefix, exc)

    async def _put_segment(self, name: str) -> None:
        assert self.folder is not None and self.state is not None
        for init in init_files(self.folder):  # before the playlist that names it
            if init not in self.state.uploaded:
                await self._put_file(init)
        path = self.folder / name
        if not path.exists():
            return  # slid out of a sliding-window playlist before its turn
        await self._put_file(name)
        path.unlink(missing_ok=True)  # confirmed in the bucket: the disk stays small

    async def _put_file(self, name: str) -> None:
        assert self.folder is not None
        data = await asyncio.to_thread((self.folder / name).read_bytes)
        await self.put(name, data)

    async def put(self, name: str, data: bytes, record: bool = True) -> None:
        """Put one object, retrying what may pass; ``record``: note it in the state."""
        assert self.folder is not None and self.state is not None
        key = self.state.prefix + name
        failures = 0
        while True:
            try:
                await self._store.put(key, data, content_type(name))
                break
            except UploadError as exc:
                self._counters.failed(exc.cause)
                if not exc.retried:
                    raise
                delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** failures)
                failures += 1
                if failures in (1, 5) or failures % 20 == 0:
                    logger.warning("upload of %s failed (%s); retrying every %.0f s at most",
                                   key, exc, BACKOFF_CAP)
                await self._sleep(delay * random.uniform(0.5, 1.0))
        self._counters.objects += 1
        self._counters.bytes += len(data)
        if record:
            self.state.uploaded[name] = len(data)
            self.state.save(self.folder)


Put = Callable[[str, bytes], Any]


async def upload_rest(folder: Path, state: UploadState, put: Put,
                      progress: Callable[[str, int], None] | None = None) -> None:
    """Everything of a finished recording not in the bucket yet, in the safe order;
    then the state is complete."""
    for name in recording_files(folder):
        if name not in state.uploaded and (folder / name).exists():
            data = await asyncio.to_thread((folder / name).read_bytes)
            await put(name, data)
            if progress is not None:
                progress(name, len(data))
    playlist = await asyncio.to_thread((folder / PLAYLIST_NAME).read_bytes)
    await put(PLAYLIST_NAME, playlist)
    state.complete = True
    state.error = None
    state.save(folder)


def init_files(folder: Path) -> list[str]:
    """fMP4: the init segments (``init.mp4``, then one per later configuration)."""
    return sorted(p.name for p in folder.glob(INIT_GLOB))


def recording_files(folder: Path) -> list[str]:
    """A finished recording's files but the playlist, in upload order."""
    names = init_files(folder)
    names += sorted(p.name for p in folder.glob(SEGMENT_GLOB))
    thumbnails = folder / THUMBNAILS_FOLDER
    images = sorted(p.name for p in thumbnails.glob("thumb*.*") if p.name != THUMBNAILS_PLAYLIST)
    names += [f"{THUMBNAILS_FOLDER}/{name}" for name in images]
    if (thumbnails / THUMBNAILS_PLAYLIST).exists():
        names.append(f"{THUMBNAILS_FOLDER}/{THUMBNAILS_PLAYLIST}")
    return [*names, SUMMARY_NAME]
