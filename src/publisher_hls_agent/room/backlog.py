"""The source frames waiting for a transcoder thread: first in, first out, never refused.

A machine too busy for the transcoder must cost the recording time, not frames: the
received frames are cheap to keep (a 720p VP8 stream is about 250 kB a second), so they
wait here for as long as the transcoder takes, in memory up to ``MEMORY_BUDGET`` and past
that in a file. The file is anonymous (unlinked as it is made, so nothing is left behind
whatever happens), in the folder it is given (the recordings' own disk), else the
system's temporary folder; a frame that finds no disk at all stays in memory.
"""

from __future__ import annotations

import collections
import contextlib
import os
import struct
import tempfile
import threading
from pathlib import Path

MEMORY_BUDGET = 32 * 1024 * 1024  # bytes of frames held in memory, per track
_RECORD = struct.Struct("!IQdd")  # frame length, RTP timestamp, arrival, queued at

# (frame, RTP timestamp, its arrival, when it was queued): the last two are the
# caller's, handed back as they were
Frame = tuple[bytes, int, float, float]


class FrameBacklog:
    def __init__(self, spill_dir: Path | None, memory_budget: int = MEMORY_BUDGET) -> None:
        self._spill_dir = spill_dir
        self._budget = memory_budget
        self._memory: collections.deque[Frame] = collections.deque()
        self._memory_bytes = 0
        self._fd: int | None = None  # the spill file's
        self._read_at = self._write_at = 0
        self._spilled = 0  # frames in the file, all of them after those in memory
        self._closed = False
        self._ready = threading.Condition()
        self.most = 0  # the longest the backlog has been, in frames
        self.spilled = 0  # frames that went through the file

    def __len__(self) -> int:
        return len(self._memory) + self._spilled

    def put(self, frame: Frame) -> None:
        with self._ready:
            fits = self._memory_bytes + len(frame[0]) <= self._budget
            if self._spilled or not fits:  # once spilling, in order: the file first
                self._spill(frame)
            else:
                self._keep(frame)
            self.most = max(self.most, len(self))
            self._ready.notify()

    def close(self) -> None:
        """No more frames; ``get`` returns None once the backlog is empty."""
        with self._ready:
            self._closed = True
            self._ready.notify()

    def get(self) -> Frame | None:
        """The oldest frame, waiting for one; None once closed and empty."""
        with self._ready:
            while not len(self):
                if self._closed:
                    self._release_file()
                    return None
                self._ready.wait()
            if self._memory:
                frame = self._memory.popleft()
                self._memory_bytes -= len(frame[0])
                return frame
            return self._unspill()

    def _keep(self, frame: Frame) -> None:
        self._memory.append(frame)
        self._memory_bytes += len(frame[0])

    def _spill(self, frame: Frame) -> None:
        fd = self._spill_file()
        if fd is None:
            self._keep(frame)
            return
        data, timestamp, arrival, queued_at = frame
        record = _RECORD.pack(len(data), timestamp, arrival, queued_at) + data
        try:
            os.pwrite(fd, record, self._write_at)
        except OSError:  # a full disk: memory it is, the file's frames first
            while self._spilled:
                self._keep(self._unspill())
            self._keep(frame)
            return
        self._write_at += len(record)
        self._spilled += 1
        self.spilled += 1

    def _unspill(self) -> Frame:
        fd = self._fd
        assert fd is not None
        length, timestamp, arrival, queued_at = _RECORD.unpack(
            os.pread(fd, _RECORD.size, self._read_at))
        data = os.pread(fd, length, self._read_at + _RECORD.size)
        self._read_at += _RECORD.size + length
        self._spilled -= 1
        if not self._spilled:  # caught up: the file starts over
            self._read_at = self._write_at = 0
            os.ftruncate(fd, 0)
        return data, timestamp, arrival, queued_at

    def _spill_file(self) -> int | None:
        if self._fd is None:
            for folder in (self._spill_dir, None):
                with contextlib.suppress(OSError):
                    self._fd, path = tempfile.mkstemp(prefix=".backlog-", dir=folder)
                    os.unlink(path)
                    break
        return self._fd

    def _release_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
