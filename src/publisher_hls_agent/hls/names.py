"""Folder names from room and participant names that no input can turn into a path.

Names come from whoever creates rooms and joins them. Everything outside a small safe
alphabet becomes ``_``; what is left is cut to a bounded length, and a short hash of
the original keeps distinct names distinct after that flattening.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path

MAX_PART = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_part(name: str) -> str:
    """A single path component made from ``name``: never empty, ``.``/``..``, or long."""
    cleaned = _UNSAFE.sub("_", name).strip("._-")[:MAX_PART].rstrip("._-")
    if cleaned == name and cleaned:
        return cleaned
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else digest


def recording_folder_name(room: str, participant: str, started: datetime) -> str:
    stamp = started.strftime("%Y%m%d-%H%M%S.") + f"{started.microsecond // 1000:03d}"
    return f"{safe_part(room)}_{safe_part(participant)}_{stamp}"


def create_recording_folder(output_dir: Path, room: str, participant: str,
                            started: datetime) -> Path:
    """Create a new, empty folder for one recording inside ``output_dir``.

    Two recordings never share a folder: if the name is taken (same names, same
    millisecond), a counter is appended.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    base = recording_folder_name(room, participant, started)
    for attempt in range(1000):
        folder = output_dir / (base if attempt == 0 else f"{base}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"no free recording folder name for {base} in {output_dir}")
