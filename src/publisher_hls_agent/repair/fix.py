"""``fix``: make a recording from another tool start at zero and say its durations right.

One offset for the whole playlist (the earliest timestamp of its first segment, the
33-bit wrap considered), so segments stay continuous with each other; every segment
rewritten through ``TimestampShifter``; each EXTINF that is missing, negative, absurd or
more than a frame off the rewritten segment's real duration recomputed; the target
duration fitted. Results go to temporary files, renamed into place at the end: the
input is never half-rewritten. ``--in-place`` first copies the originals to a backup
folder (unless told not to).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from ..errors import FixError, PlaylistError
from ..hls.files import atomic_write
from ..hls.tsformat import CLOCK, PACKET_SIZE, SYNC
from ..inspection.durations import segment_duration
from ..inspection.playlist import Entry, MediaPlaylist
from .playlist_fix import editable_playlist, needs_fixing, written_target
from .tsrewrite import TimestampShifter, first_timestamp

CHUNK = 1 << 20


@dataclass
class FixResult:
    offset: int = 0  # 90 kHz ticks subtracted
    changes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


def find_playlist(path: Path) -> Path:
    if path.is_file():
        return path
    playlists = sorted(path.glob("*.m3u8"))
    if len(playlists) != 1:
        raise FixError(f"{path}: expected one .m3u8 playlist, found {len(playlists)}")
    return playlists[0]


def fix_recording(path: Path, output: Path | None, *, backup: bool = True) -> FixResult:
    """Fix the recording at ``path`` into ``output`` (a folder), or in place when
    ``output`` is None."""
    playlist_path = find_playlist(path)
    source = playlist_path.parent
    try:
        playlist = editable_playlist(playlist_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, PlaylistError) as exc:
        raise FixError(f"{playlist_path}: {exc}") from None
    segments = _segments(playlist, source)
    _refuse_non_ts(segments[0])
    result = FixResult()
    start = first_timestamp(_head(segments[0]))
    if start is None:
        raise FixError(f"{segments[0]}: no timestamps found")
    result.offset = start
    result.changes.append(f"timestamps shifted by -{start / CLOCK:.6f} s "
                          f"(the first was {start}, now 0)")
    target = output if output is not None else source
    target.mkdir(parents=True, exist_ok=True)
    staged: dict[Path, tuple[Path, Path]] = {}  # segment -> (temporary, final)
    try:
        for entry, segment in zip(playlist.entries, segments, strict=True):
            if segment.resolve() not in staged:  # a segment named twice is rewritten once
                staged[segment.resolve()] = (_rewrite(segment, target, start, entry.uri,
                                                      result),
                                             target / segment.resolve().relative_to(
                                                 source.resolve()) if output is not None
                                             else segment)
            _fix_duration(playlist, entry, staged[segment.resolve()][0], result)
        old_target = written_target(playlist)
        new_target = playlist.fit_target_duration()
        if old_target != new_target:
            result.changes.append(f"EXT-X-TARGETDURATION {old_target} -> {new_target}")
        if output is None and backup:
            folder = _backup(source, [*{s.resolve(): s for s in segments}.values(),
                                      playlist_path])
            result.changes.append(f"originals kept in {folder}")
        for temporary, final in staged.values():
            final.parent.mkdir(parents=True, exist_ok=True)
            temporary.replace(final)
            result.written.append(final)
    finally:
        for temporary, _ in staged.values():
            temporary.unlink(missing_ok=True)
    final_playlist = target / playlist_path.name
    atomic_write(final_playlist, playlist.render().encode())
    result.written.append(final_playlist)
    return result


def _segments(playlist: MediaPlaylist, source: Path) -> list[Path]:
    """The segment files the playlist names; FixError unless each is a regular file
    inside the playlist's folder."""
    segments = [source / entry.uri for entry in playlist.entries]
    for entry, segment in zip(playlist.entries, segments, strict=True):
        try:
            inside = segment.resolve().is_relative_to(source.resolve())
            regular = segment.is_file()
        except (OSError, ValueError):  # a NUL, a name too long for the file system
            raise FixError(f"{entry.uri!r}: not a usable file name") from None
        if not inside:
            raise FixError(f"{segment}: outside the playlist's folder; not touched")
        if not regular:
            raise FixError(f"{segment}: missing")
    return segments


def _fix_duration(playlist: MediaPlaylist, entry: Entry, rewritten: Path,
                  result: FixResult) -> None:
    """Measure the rewritten segment; replace its EXTINF if that is wrong."""
    measured = segment_duration(rewritten.read_bytes())
    if measured is None:
        result.problems.append(f"{entry.uri}: no timestamps; EXTINF left as it was")
    elif needs_fixing(entry, *measured):
        before = "missing" if entry.duration is None else f"{entry.duration:g}"
        playlist.set_duration(entry, measured[0])
        result.changes.append(f"{entry.uri}: EXTINF {before} -> {measured[0]:.6f}")


def _rewrite(segment: Path, target: Path, start: int, uri: str, result: FixResult) -> Path:
    """``segment`` with its timestamps shifted, into a temporary file of its own."""
    descriptor, name = tempfile.mkstemp(prefix=".fix-", suffix=".tmp", dir=target)
    temporary = Path(name)
    shifter = TimestampShifter(start)
    with segment.open("rb") as reader, os.fdopen(descriptor, "wb") as writer:
        for chunk in _chunks(reader):
            writer.write(shifter.feed(chunk))
        writer.write(shifter.finish())
    result.problems += [f"{uri}: {problem}" for problem in shifter.problems]
    return temporary


def _backup(source: Path, files: list[Path]) -> Path:
    """Copies of ``files`` in a new folder of ``source``, their relative paths kept (two
    ``seg.ts`` in two subfolders stay two files; two runs never share a folder)."""
    folder = Path(tempfile.mkdtemp(prefix=f".fix-backup-{datetime.now(UTC):%Y%m%d-%H%M%S}-",
                                   dir=source))
    for file in files:
        copy = folder / file.resolve().relative_to(source.resolve())
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, copy)
    return folder


def _refuse_non_ts(segment: Path) -> None:
    head = _head(segment, 3 * PACKET_SIZE)
    if len(head) < PACKET_SIZE or head[0] != SYNC or (
            len(head) > PACKET_SIZE and head[PACKET_SIZE] != SYNC):
        raise FixError(f"{segment}: not MPEG-TS (fix rewrites MPEG-TS segments only)")


def _head(path: Path, size: int = 4 * CHUNK) -> bytes:
    with path.open("rb") as reader:
        return reader.read(size)


def _chunks(reader: BinaryIO) -> Iterator[bytes]:
    while chunk := reader.read(CHUNK):
        yield chunk
