"""A transcoder fed from a thread of its own: decoding and encoding a picture takes
milliseconds, which the event loop (and every other recording on it) must not wait for.
The transcoding itself is done in a process of its own (``TranscoderProcess``); the
thread waits for it on a pipe, without the GIL.

Frames wait for it in a ``FrameBacklog`` that refuses none: on a machine too busy for
the transcoder, the pictures come late (``delay`` says how late) but all of them come,
and once told to finish the thread goes through what is queued before it stops.

A keyframe asked for on the loop lands on whatever frame the thread takes next, and on
a busy machine the pictures already transcoded wait for the loop: seconds of media,
and segments that long over their target (seen with four browsers and a busy core).
So the thread also forces one itself every ``keyframe_every`` of source media since
the last, where the recorder wants its next cut, whatever the delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..errors import TranscodeError
from ..media.transcode import EncodedPicture
from .backlog import FrameBacklog

logger = logging.getLogger(__name__)


class Transcoder(Protocol):
    """``VideoTranscoder``'s calls, made in this process or another."""

    def transcode(self, frame: bytes, rtp_timestamp: int) -> list[EncodedPicture]: ...
    def force_keyframe(self) -> None: ...
    def close(self) -> None: ...


class TranscodingThread:
    def __init__(self, transcoder: Transcoder, name: str,
                 done: Callable[[list[EncodedPicture], float, float], None],
                 failed: Callable[[str], None], finished: Callable[[], None], *,
                 spill_dir: Path | None = None, keyframe_every: int = 0) -> None:
        """Called on the loop: once per frame submitted, ``done(pictures, arrival,
        delay)`` (usually one picture, none while the decoder waits; ``delay``: seconds
        the frame spent queued and transcoded) or ``failed(reason)``; ``finished()``
        after ``close`` once the backlog went through. A backlog past its memory budget
        goes to a file in ``spill_dir``. ``keyframe_every``: RTP ticks of source media
        between the keyframes forced unasked (0: none)."""
        self._transcoder = transcoder
        self._keyframe_every = keyframe_every
        self._last_keyframe: int | None = None  # the RTP timestamp of the last one out
        self._done = done
        self._failed = failed
        self._finished = finished
        self._loop = asyncio.get_running_loop()
        self.backlog = FrameBacklog(spill_dir)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, frame: bytes, rtp_timestamp: int, arrival: float) -> None:
        """Queue a source frame (``arrival``: when it came, handed back with it)."""
        self.backlog.put((frame, rtp_timestamp, arrival, time.monotonic()))

    def force_keyframe(self) -> None:
        # A flag the thread reads at its next picture: no lock needed for one bool.
        self._transcoder.force_keyframe()

    def close(self) -> None:
        """Go through what is queued, then stop; returns at once."""
        self.backlog.close()

    def _run(self) -> None:
        try:
            while (item := self.backlog.get()) is not None:
                self._transcode(*item)
        finally:
            self._transcoder.close()
            self._call_on_loop(self._finished)

    def _transcode(self, frame: bytes, rtp_timestamp: int, arrival: float,
                   queued_at: float) -> None:
        last = self._last_keyframe
        if self._keyframe_every and last is not None and (
                rtp_timestamp - last >= self._keyframe_every):
            self._transcoder.force_keyframe()
        try:
            pictures = self._transcoder.transcode(frame, rtp_timestamp)
        except TranscodeError as exc:
            self._call_on_loop(self._failed, str(exc))
            return
        except Exception as exc:  # a bug or FFmpeg surprise: the loop decides what next
            logger.exception("transcoder failed")
            self._call_on_loop(self._failed, repr(exc))
            return
        for picture in pictures:
            if picture.keyframe:
                self._last_keyframe = picture.rtp_timestamp
        self._call_on_loop(self._done, pictures, arrival, time.monotonic() - queued_at)

    def _call_on_loop(self, callback: Callable[..., None], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody left to receive it
            self._loop.call_soon_threadsafe(callback, *args)
