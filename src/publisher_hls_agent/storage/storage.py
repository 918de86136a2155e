"""The process's storage: one S3 client, an upload per recording, and recovery of
recordings a previous run left unfinished in OUTPUT_DIR."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

from ..config import S3Config
from ..errors import UploadError
from ..layout import SEGMENT_GLOB, SUMMARY_NAME
from .keys import recording_prefix
from .s3 import S3Store
from .uploader import Counters, RecordingUpload, UploadState

logger = logging.getLogger(__name__)


class Storage:
    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.store = S3Store(config)
        self.counters = Counters()

    async def __aenter__(self) -> Storage:
        await self.store.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.store.__aexit__(*exc)

    def for_recording(self, room: str, participant: str) -> RecordingUpload:
        return RecordingUpload(
            self.store, self.counters,
            lambda folder: recording_prefix(self.config.prefix, room, participant, folder),
            realtime=self.config.realtime_upload)

    async def upload_finished(self, folder: Path,
                              progress: Callable[[str, int], None] | None = None
                              ) -> UploadState:
        """Upload what is left of a finished recording (``recording.json`` written);
        raises ``UploadError`` when the store refuses."""
        state = UploadState.load(folder)
        if state is None:
            room, participant = _names_of(folder / SUMMARY_NAME)
            state = UploadState(self.config.bucket, recording_prefix(
                self.config.prefix, room, participant, folder))
        upload = RecordingUpload.resuming(self.store, self.counters, folder, state)
        await upload.upload_rest(progress)
        return state

    async def recover(self, output_dir: Path, closed: list[Path] | None = None) -> None:
        """Upload the finished recordings a previous run had not fully uploaded, and
        the ``closed`` ones (cut short, then closed) that have segments."""
        for folder in closed or []:
            if UploadState.load(folder) is None and any(folder.glob(SEGMENT_GLOB)):
                await self._recover(folder, already=0)
        for folder, state in _unfinished_uploads(output_dir):
            if not (folder / SUMMARY_NAME).exists():
                logger.warning("%s was never finalized (the agent was killed while "
                               "recording); not uploaded", folder)
                continue
            await self._recover(folder, already=len(state.uploaded))

    async def _recover(self, folder: Path, *, already: int) -> None:
        logger.info("resuming the upload of %s (%d objects already in the bucket)",
                    folder, already)
        try:
            await self.upload_finished(folder)
        except UploadError as exc:
            logger.error("upload of %s failed again: %s", folder, exc)
        else:
            logger.info("recovered the upload of %s", folder)
        await asyncio.sleep(0)


def _unfinished_uploads(output_dir: Path) -> list[tuple[Path, UploadState]]:
    found = []
    for folder in sorted(output_dir.glob("*/")):
        state = UploadState.load(folder)
        if state is not None and not state.complete:
            found.append((folder, state))
    return found


def _names_of(summary_path: Path) -> tuple[str, str]:
    """The room and participant a ``recording.json`` names; UploadError (cause
    ``other``, naming the file) when it does not name them as text."""
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UploadError("other", f"{summary_path}: cannot be read ({exc})") from None
    room = summary.get("room") if isinstance(summary, dict) else None
    participant = summary.get("participant") if isinstance(summary, dict) else None
    if not isinstance(room, str) or not isinstance(participant, str):
        raise UploadError("other", f"{summary_path}: names no room and participant")
    return room, participant
