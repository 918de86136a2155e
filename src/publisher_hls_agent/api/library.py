"""The recordings on this agent's disk, for the preview page: which there are, and which
of their files may be served.

A finished recording names its room and participant in ``recording.json``; one still
recording is known from the agent's jobs. A folder with neither (a recording cut short
by a crash, before ``fix``) belongs to no known room: only a token for every room sees
it. Files are served only by name, from a recording's own folder, and only the kinds a
player asks for: a crafted folder or file name cannot reach anything else on disk, and
neither can a symbolic link in ``OUTPUT_DIR`` (links are never followed). What a
``recording.json`` says is shown only in the types the page expects, so one malformed
file cannot break the listing for everyone.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..inspection.playlist import MediaPlaylist
from ..layout import (
    PLAYABLE_NAME,
    PLAYLIST_NAME,
    SUMMARY_NAME,
    THUMBNAIL_NAME,
    THUMBNAILS_FOLDER,
)


def list_recordings(output_dir: Path, active: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every recording folder under ``output_dir`` with a playlist, newest first.

    ``active``: the agent's jobs (``room``, ``participant``, ``folder`` of the recording
    in progress, if any)."""
    recording_now = _jobs_by_folder(active)
    found = []
    for playlist in output_dir.glob(f"*/{PLAYLIST_NAME}"):
        folder = playlist.parent
        if folder.is_symlink() or playlist.is_symlink():
            continue
        summary = _read_summary(folder)
        job = recording_now.get(folder.name)
        if summary is not None:
            video = summary.get("video")
            entry = {"room": _text(summary.get("room")),
                     "participant": _text(summary.get("participant")),
                     "state": "finished", "started_at": _text(summary.get("started_at")),
                     "duration": _seconds(summary.get("duration")),
                     "video": _text(video.get("source_codec")) if isinstance(video, dict)
                     else None, "thumbnails": _thumbnails(summary)}
        elif job is not None:
            entry = {"room": job["room"], "participant": job["participant"],
                     "state": "recording", "started_at": job.get("started_at"),
                     "duration": job.get("duration"), "video": None, "thumbnails": []}
        else:
            entry = {"room": None, "participant": None, "state": "interrupted",
                     "started_at": None, "duration": None, "video": None, "thumbnails": []}
        entry["folder"] = folder.name
        entry["on_disk"] = _segments_on_disk(folder)
        found.append(entry)
    found.sort(key=lambda e: (e["started_at"] or "", e["folder"]), reverse=True)
    return found


def playable_file(output_dir: Path, folder: str, name: str) -> Path | None:
    """The file a player asked for, or None if it is not one that may be served: a
    playable name in a recording folder of ``output_dir``, neither of them a link."""
    directory = playable_folder(output_dir, folder) if PLAYABLE_NAME.fullmatch(name) else None
    if directory is None:
        return None
    path = directory / name
    if path.is_symlink() or not path.is_file():
        return None
    return path


def thumbnail_file(output_dir: Path, folder: str, name: str) -> Path | None:
    """A thumbnail the preview page asked for, on the same terms as ``playable_file``."""
    if not THUMBNAIL_NAME.fullmatch(name):
        return None
    directory = playable_folder(output_dir, folder)
    if directory is None:
        return None
    thumbnails, path = directory / THUMBNAILS_FOLDER, directory / THUMBNAILS_FOLDER / name
    if thumbnails.is_symlink() or path.is_symlink() or not path.is_file():
        return None
    return path


def playable_folder(output_dir: Path, folder: str) -> Path | None:
    """A recording folder of ``output_dir`` by its name, never a link or a way out."""
    if folder in ("", ".", "..") or "/" in folder or "\\" in folder or "\0" in folder:
        return None
    directory = output_dir / folder
    return None if directory.is_symlink() else directory


def _thumbnails(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The thumbnails ``recording.json`` lists (name in the thumbnails folder, media
    time), what may be served of them only."""
    made = summary.get("thumbnails")
    images = made.get("images") if isinstance(made, dict) else None
    found = []
    for image in images if isinstance(images, list) else []:
        name = image.get("name") if isinstance(image, dict) else None
        at = _seconds(image.get("at")) if isinstance(image, dict) else None
        if isinstance(name, str) and at is not None:
            base = name.removeprefix(f"{THUMBNAILS_FOLDER}/")
            if THUMBNAIL_NAME.fullmatch(base):
                found.append({"name": base, "at": at})
    return found


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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _read_summary(folder: Path) -> dict[str, Any] | None:
    try:
        summary = json.loads((folder / SUMMARY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def _segments_on_disk(folder: Path) -> bool:
    """False once a real-time upload has moved the segments to the bucket."""
    try:
        playlist = MediaPlaylist.parse((folder / PLAYLIST_NAME).read_text(encoding="utf-8"),
                                       strict=True)
    except (OSError, ValueError):  # PlaylistError too
        return False
    # Only names this agent writes count: a playlist naming any other path would make
    # the listing say whether that path exists.
    return bool(playlist.entries) and all(
        PLAYABLE_NAME.fullmatch(entry.uri) is not None and not (folder / entry.uri).is_symlink()
        and (folder / entry.uri).is_file() for entry in playlist.entries)
