"""Closing a recording cut short: the agent was killed (SIGKILL, the machine lost)
before it finalized, so the playlist has no ``#EXT-X-ENDLIST`` and there is no
``recording.json``. What the segments on disk hold is kept whole; only the segment in
progress is lost (its bytes were never a file of their own).

A recording marks itself cut short by the file it writes as it begins
(``layout.STARTED_NAME``: whose recording, and which process writes it) and removes once
it is finalized. Closing it:

- the playlist ends (``#EXT-X-ENDLIST``), naming too the MPEG-TS segments written
  whole just before the end but not yet named (the writer names a segment right after
  its file is in place: a kill can fall in between);
- ``output.ts`` is cut to its last whole TS packet (the packets of the segment in
  progress stay: a reader of the whole file drops a last frame that is not whole);
- ``recording.json`` is written from the playlist and the marker, with ``state``
  ``interrupted``, so that upload and the preview page treat it as any other.

A folder whose writer is still alive on this machine is left alone: two agents may share
an ``OUTPUT_DIR``.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InputError, PlaylistError
from ..hls.files import atomic_write
from ..hls.tsformat import PACKET_SIZE
from ..inspection.durations import segment_duration
from ..inspection.files import read_regular_file
from ..inspection.playlist import MediaPlaylist
from ..layout import (
    OUTPUT_NAME,
    PLAYLIST_NAME,
    SEGMENT_PREFIX,
    STARTED_NAME,
    SUMMARY_NAME,
    TS_SEGMENT_SUFFIX,
    segment_name,
)
from ..processes import identity_alive

INTERRUPTED = "interrupted: the agent stopped without finalizing (killed, or the machine lost)"
# A writer on another machine (a shared disk) cannot be asked: its recording counts as cut
# short once nothing in it has changed for this long.
FOREIGN_IDLE = 120.0
MAX_SEGMENT_BYTES = 1 << 30  # what a segment's timestamps are read from, at most


def interrupted_recordings(output_dir: Path) -> list[Path]:
    """The folders of ``output_dir`` holding a recording cut short, oldest first."""
    found = []
    for marker in sorted(output_dir.glob(f"*/{STARTED_NAME}")):
        folder = marker.parent
        if folder.is_symlink() or (folder / SUMMARY_NAME).exists():
            continue
        if not _writer_alive(_read_marker(marker), folder):
            found.append(folder)
    return found


def close_interrupted(folder: Path) -> dict[str, Any] | None:
    """Close the recording cut short in ``folder`` (see the module docstring); returns
    the ``recording.json`` written, or None if ``folder`` holds no such recording (or
    its writer still runs)."""
    marker = folder / STARTED_NAME
    if not marker.is_file() or (folder / SUMMARY_NAME).exists():
        return None
    started = _read_marker(marker)
    if _writer_alive(started, folder):
        return None
    segments, duration = _end_playlist(folder / PLAYLIST_NAME)
    _cut_to_whole_packets(folder / OUTPUT_NAME)
    playlist = folder / PLAYLIST_NAME
    ended = playlist.stat().st_mtime if playlist.exists() else marker.stat().st_mtime
    summary = {
        "room": _text(started.get("room")),
        "participant": _text(started.get("participant")),
        "folder": str(folder),
        "state": "interrupted",
        "ended_because": INTERRUPTED,
        "started_at": _text(started.get("started_at")),
        "ended_at": datetime.fromtimestamp(ended, UTC).isoformat(timespec="milliseconds"),
        "duration": round(duration, 3),
        "segment_format": _text(started.get("segment_format")),
        "segments": segments,
    }
    atomic_write(folder / SUMMARY_NAME, (json.dumps(summary, indent=2) + "\n").encode())
    marker.unlink(missing_ok=True)
    return summary


def _end_playlist(path: Path) -> tuple[list[dict[str, Any]], float]:
    """End the playlist; its segments and their duration. (Our writer names a segment
    only once its file is whole; a real-time upload may have moved it to the bucket.)"""
    try:
        playlist = MediaPlaylist.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, PlaylistError):
        return [], 0.0  # no segment was ever closed: nothing to play, nothing to end
    named = [(entry.uri, entry.duration or 0.0, entry.discontinuity)
             for entry in playlist.entries]
    unnamed = [] if playlist.ended else _whole_but_unnamed(path.parent, named)
    if not playlist.ended:
        lines = list(playlist.lines)
        while lines and not lines[-1].strip():
            lines.pop()
        for name, duration, _ in unnamed:
            lines += [f"#EXTINF:{duration:.6f},", name]
        atomic_write(path, ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n").encode())
    segments = []
    for name, duration, discontinuity in [*named, *unnamed]:
        on_disk = path.parent / name
        segments.append({"name": name, "duration": duration,
                         "bytes": on_disk.stat().st_size if on_disk.is_file() else None,
                         "discontinuity": discontinuity})
    return segments, sum(duration for _, duration, _ in [*named, *unnamed])


def _whole_but_unnamed(folder: Path, named: list[tuple[str, float, bool]]
                       ) -> list[tuple[str, float, bool]]:
    """The MPEG-TS segments after the last one named, in sequence, with the durations
    their timestamps say (the writer's files are whole once they have their name)."""
    last = _sequence(named[-1][0]) if named else -1
    if last is None:
        return []  # not our writer's names: nothing to guess
    found = []
    sequence = last + 1
    while (segment := folder / segment_name(sequence, TS_SEGMENT_SUFFIX)).is_file():
        try:
            measured = segment_duration(read_regular_file(segment, MAX_SEGMENT_BYTES))
        except (OSError, InputError):
            break
        if measured is None:
            break
        found.append((segment.name, measured[0], False))
        sequence += 1
    return found


def _sequence(name: str) -> int | None:
    match = re.fullmatch(rf"{SEGMENT_PREFIX}(\d+){re.escape(TS_SEGMENT_SUFFIX)}", name)
    return int(match.group(1)) if match else None


def _cut_to_whole_packets(output: Path) -> None:
    if output.is_file() and not output.is_symlink():
        size = output.stat().st_size
        if size % PACKET_SIZE:
            os.truncate(output, size - size % PACKET_SIZE)


def _read_marker(marker: Path) -> dict[str, Any]:
    try:
        value = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _writer_alive(started: dict[str, Any], folder: Path) -> bool:
    """Is the process that writes ``folder`` still running? Asked of this machine's
    processes when it ran here, else judged by when the folder last changed."""
    writer = started.get("writer")
    alive = identity_alive(writer) if isinstance(writer, str) else None
    if alive is not None:
        return alive
    newest = max((p.stat().st_mtime for p in folder.iterdir() if p.is_file()), default=0.0)
    return datetime.now(UTC).timestamp() - newest < FOREIGN_IDLE


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
