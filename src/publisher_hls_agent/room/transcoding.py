"""A ``VideoTranscoder`` on a thread of its own: decoding and encoding a picture takes
milliseconds, which the event loop (and every other recording on it) must not wait for.
PyAV lets go of the GIL inside FFmpeg, so the thread runs beside the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable

from ..errors import TranscodeError
from ..media.transcode import EncodedPicture, VideoTranscoder

logger = logging.getLogger(__name__)

# Frames waiting for the thread, at most: about two seconds of video. A thread that falls
# further behind is not keeping up (the machine is overloaded): frames are dropped and the
# transcoder resumes at the publisher's next keyframe.
MAX_BACKLOG = 60

_Item = tuple[bytes, int, float] | None  # (frame, rtp timestamp, arrival); None: stop


class TranscodingThread:
    def __init__(self, transcoder: VideoTranscoder, name: str,
                 deliver: Callable[[EncodedPicture, float], None],
                 failed: Callable[[str], None]) -> None:
        """``deliver(picture, arrival)`` and ``failed(reason)`` are called on the loop."""
        self._transcoder = transcoder
        self._deliver = deliver
        self._failed = failed
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, frame: bytes, rtp_timestamp: int, arrival: float) -> bool:
        """Queue a source frame; False (and nothing queued) if the thread is behind."""
        if self._queue.qsize() >= MAX_BACKLOG:
            return False
        self._queue.put((frame, rtp_timestamp, arrival))
        return True

    def force_keyframe(self) -> None:
        # A flag the thread reads at its next picture: no lock needed for one bool.
        self._transcoder.force_keyframe()

    def close(self) -> None:
        """Stop after the frames already queued; returns at once."""
        self._queue.put(None)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            frame, rtp_timestamp, arrival = item
            try:
                pictures = self._transcoder.transcode(frame, rtp_timestamp)
            except TranscodeError as exc:
                self._call_on_loop(self._failed, str(exc))
                continue
            except Exception as exc:  # a bug or FFmpeg surprise: the loop decides what next
                logger.exception("transcoder failed")
                self._call_on_loop(self._failed, repr(exc))
                continue
            for picture in pictures:
                self._call_on_loop(self._deliver, picture, arrival)
        self._transcoder.close()

    def _call_on_loop(self, callback: Callable[..., None], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody left to receive it
            self._loop.call_soon_threadsafe(callback, *args)
