"""Webhook events waiting to be delivered: one file each in ``OUTPUT_DIR/.webhooks/``.

The recording processes put events here (they know the recordings) and the worker
delivers them (it outlives any recording process, and a restarted worker finds what
an earlier one left): delivered at least once, whatever is killed when. A name orders
the files: when it was put, then a counter, so each receiver gets a recording's
events in the order they happened. A file is whole or absent (written aside, then
renamed), and removed once its receiver has it.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..hls.files import atomic_write

OUTBOX_NAME = ".webhooks"
_counter = itertools.count()


@dataclass(frozen=True)
class Pending:
    path: Path
    url: str
    body: str


class Outbox:
    def __init__(self, output_dir: Path) -> None:
        self.folder = output_dir / OUTBOX_NAME

    def put(self, url: str, body: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_counter):08d}.json"
        atomic_write(self.folder / name, json.dumps({"url": url, "body": body}).encode())

    def pending(self) -> list[Pending]:
        """Every event not yet delivered, oldest first; a file that is not one of ours
        (damaged, or not ours at all) is left where it is and skipped."""
        try:
            names = sorted(p for p in self.folder.iterdir()
                           if p.suffix == ".json" and not p.name.startswith("."))
        except OSError:
            return []
        found = []
        for path in names:
            try:
                entry = json.loads(path.read_bytes())
                found.append(Pending(path, str(entry["url"]), str(entry["body"])))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return found

    def delivered(self, entry: Pending) -> None:
        entry.path.unlink(missing_ok=True)
