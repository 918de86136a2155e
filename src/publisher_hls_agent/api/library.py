"""The recordings on this agent's disk, for the preview page: which there are, and which
of their files may be served.

A finished recording names its room and participant in ``recording.json``; one still
recording is known from the agent's jobs. A folder with neither (a recording cut short
by a crash, before ``fix``) belongs to no known room: only a token for every room sees
it. Files are served only by name, from a recording's own folder, and only the kinds a
player asks for: a crafted folder or file name cannot reach anything else on disk.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..hls.check import CheckError, parse_playlist
from ..hls.writer import PLAYLIST_NAME
from ..storage.uploader import SUMMARY_NAME

PLAYABLE = re.compile(r"^(playlist\.m3u8|init\.mp4|segment\d+\.(ts|m4s))$")


def list_recordings(output_dir: Path, active: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every recording folder under ``output_dir`` with a playlist, newest first.

    ``active``: the agent's jobs (``room``, ``participant``, ``folder`` of the recording
    in progress, if any)."""
    recording_now = _jobs_by_folder(active)
    found = []
    for playlist in output_dir.glob(f"*/{PLAYLIST_NAME}"):
        folder = playlist.parent
        summary = _read_summary(folder)
        job = recording_now.get(folder.name)
        if summary is not None:
            entry = {"room": summary.get("room"), "participant": summary.get("participant"),
                     "state": "finished", "started_at": summary.get("started_at"),
                     "duration": summary.get("duration"),
                     "video": (summary.get("video") or {}).get("source_codec")}
        elif job is not None:
            entry = {"room": job["room"], "participant": job["participant"],
                     "state": "recording", "started_at": job.get("started_at"),
                     "duration": job.get("duration"), "video": None}
        else:
            entry = {"room": None, "participant": None, "state": "interrupted",
                     "started_at": None, "duration": None, "video": None}
        entry["folder"] = folder.name
        entry["on_disk"] = _segments_on_disk(folder)
        found.append(entry)
    found.sort(key=lambda e: (e["started_at"] or "", e["folder"]), reverse=True)
    return found


def playable_file(output_dir: Path, folder: str, name: str) -> Path | None:
    """The file a player asked for, or None if it is not one that may be served."""
    if not PLAYABLE.match(name) or folder in ("", ".", "..") or "/" in folder \
            or "\\" in folder or "\0" in folder:
        return None
    path = output_dir / folder / name
    return path if path.is_file() else None


def room_of(output_dir: Path, folder: str, active: list[dict[str, Any]]) -> str | None:
    """The room a recording folder belongs to; None if nothing says."""
    summary = _read_summary(output_dir / folder)
    if summary is not None:
        room = summary.get("room")
        return room if isinstance(room, str) else None
    job = _jobs_by_folder(active).get(folder)
    return str(job["room"]) if job is not None else None


def _jobs_by_folder(active: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The agent's jobs by the name of the folder they are recording into."""
    return {Path(job["folder"]).name: job for job in active if job.get("folder")}


def _read_summary(folder: Path) -> dict[str, Any] | None:
    try:
        summary = json.loads((folder / SUMMARY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def _segments_on_disk(folder: Path) -> bool:
    """False once a real-time upload has moved the segments to the bucket."""
    try:
        playlist = parse_playlist((folder / PLAYLIST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, CheckError):
        return False
    return bool(playlist.entries) and all((folder / entry.uri).is_file()
                                          for entry in playlist.entries)
