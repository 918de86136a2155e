"""Reading a recording's files whole, within bounds.

A playlist names its files, and a playlist may come from anyone: it can name a
device, a FIFO or a file of any size. Only regular files of a bounded size are read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import FileRefused

# What is read whole: more than this is no segment of ours (a 4K keyframe-only 10 s
# segment is a few hundred MB), and a playlist naming /dev/zero is not a file.
MAX_SEGMENT_BYTES = 1 << 30
MAX_PLAYLIST_BYTES = 16 << 20


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; FileRefused otherwise
    (a device, a FIFO, a folder, or too large), OSError if it cannot be read."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer before fstat can refuse it.
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise FileRefused("not a regular file")
        if status.st_size > limit:
            raise FileRefused(f"{status.st_size} bytes, more than {limit} a file can be")
        data = file.read(limit + 1)  # the file may have grown since fstat
    if len(data) > limit:
        raise FileRefused(f"more than {limit} bytes")
    return data
