"""Folder names from room and participant names that no input can turn into a path.

Names come from whoever creates rooms and joins them. Everything outside a small safe
alphabet becomes ``_``; what is left is cut to a bounded length, and a hash of the
original keeps distinct names distinct after that flattening.

The mapping is one-to-one (two names never share a folder or an S3 key): a name is
kept as it is only if it is clean and does not end the way a hashed one does
(``-`` and 16 hex digits, or those digits alone); every other name gets the hash,
64 bits of SHA-256, so two of them meet only by a collision of that.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path

MAX_PART = 64
DIGEST = 16  # hex digits
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HASHED = re.compile(rf"(?:^|-)[0-9a-f]{{{DIGEST}}}")


def safe_part(name: str) -> str:
    """A single path component made from ``name``: never empty, ``.``/``..``, or long,
    and never the same for two names."""
    cleaned = _UNSAFE.sub("_", name).strip("._-")[:MAX_PART].rstrip("._-")
    if cleaned == name and cleaned and not _looks_hashed(cleaned):
        return cleaned
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST]
    return f"{cleaned}-{digest}" if cleaned else digest


def _looks_hashed(part: str) -> bool:
    match = _HASHED.search(part, max(0, len(part) - DIGEST - 1))
    return match is not None and match.end() == len(part)


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
