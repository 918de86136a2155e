"""A media playlist (RFC 8216) as read from a file: its segments and tags, and the
lines they came from. Pure.

One reader for ``check`` and ``fix``. It keeps every line as it was, so that ``fix``
can change a duration or the target duration and leave the rest untouched, and it is
forgiving: a line it cannot read is noted in ``problems`` (in the order of the lines)
rather than raised, because ``fix`` repairs exactly such lines. ``check``, which holds
a recording to the rules, reads with ``strict=True`` and refuses the first of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import PlaylistError

NOT_A_PLAYLIST = "not an HLS playlist: the first line is not #EXTM3U"
N = TypeVar("N", int, float)


@dataclass
class Entry:
    """One segment. ``line`` and ``extinf_line`` index ``MediaPlaylist.lines``."""

    uri: str
    line: int  # index of the URI line
    extinf_line: int | None  # index of its #EXTINF line, if any
    duration: float | None  # as written; None when missing or unreadable
    discontinuity: bool = False  # EXT-X-DISCONTINUITY before it
    map_uri: str | None = None  # fMP4: the EXT-X-MAP in force for it


@dataclass
class MediaPlaylist:
    lines: list[str]
    header_line: int = 0  # where #EXTM3U is: blank lines may come before it
    entries: list[Entry] = field(default_factory=list)
    target_line: int | None = None  # the (last) EXT-X-TARGETDURATION line
    ended: bool = False  # EXT-X-ENDLIST
    init_uri: str | None = None  # fMP4: the first EXT-X-MAP's URI
    map_uri: str | None = None  # the last EXT-X-MAP's: each applies until the next
    master: bool = False  # it has EXT-X-STREAM-INF: a master playlist, not a media one
    problems: list[str] = field(default_factory=list)  # lines a strict reader refuses

    @classmethod
    def parse(cls, text: str, *, strict: bool = False) -> MediaPlaylist:
        """The playlist in ``text``; PlaylistError if it does not begin with #EXTM3U,
        and with ``strict`` for the first of its ``problems``."""
        lines = text.splitlines()
        header = next((i for i, line in enumerate(lines) if line.strip()), None)
        if header is None or lines[header].strip() != "#EXTM3U":
            raise PlaylistError(NOT_A_PLAYLIST)
        playlist = cls(lines, header,
                       master=any(line.startswith("#EXT-X-STREAM-INF") for line in lines))
        extinf: tuple[int, float | None] | None = None  # the #EXTINF awaiting its URI
        discontinuity = False
        for index in range(header + 1, len(lines)):
            line = lines[index].strip()
            if line.startswith("#EXTINF:"):
                extinf = (index, playlist._number(line, float))
            elif line == "#EXT-X-DISCONTINUITY":
                discontinuity = True
            elif line and not line.startswith("#"):
                if extinf is None:
                    playlist.problems.append(f"segment {line} has no #EXTINF")
                where, duration = extinf if extinf is not None else (None, None)
                playlist.entries.append(Entry(line, index, where, duration, discontinuity,
                                              playlist.map_uri))
                extinf, discontinuity = None, False
            else:
                playlist._read_tag(line, index)
        if strict and playlist.problems:
            raise PlaylistError(playlist.problems[0])
        return playlist

    def _read_tag(self, line: str, index: int) -> None:
        if line.startswith("#EXT-X-TARGETDURATION:"):
            self.target_line = index
            self._number(line, int)  # noted here, in line order, if unreadable
        elif line == "#EXT-X-ENDLIST":
            self.ended = True
        elif line.startswith("#EXT-X-MAP:"):
            if 'URI="' not in line:
                self.problems.append(f"{line[:80]!r} has no URI")
            else:
                self.map_uri = line.split('URI="', 1)[1].split('"', 1)[0]
                self.init_uri = self.init_uri or self.map_uri

    def _number(self, line: str, kind: Callable[[str], N]) -> N | None:
        """The number of an #EXTINF or #EXT-X-TARGETDURATION line, None (and a problem
        noted) unless it is finite: only that can be reasoned about; a finite but wrong
        one is for the rules to report, or for ``fix`` to replace."""
        value = _number(line, kind)
        if isinstance(value, str):
            self.problems.append(value)
            return None
        return value

    @property
    def target_duration(self) -> int | None:
        if self.target_line is None:
            return None
        value = _number(self.lines[self.target_line].strip(), int)
        return None if isinstance(value, str) else value

    # --- what ``fix`` changes; every other line stays as it was ---------------------------

    def set_duration(self, entry: Entry, seconds: float) -> None:
        if entry.extinf_line is not None:
            title = self.lines[entry.extinf_line].strip().partition(",")[2]
            self.lines[entry.extinf_line] = f"#EXTINF:{seconds:.6f},{title}"
        else:  # a segment without EXTINF gets one just before its URI
            self._insert(entry.line, f"#EXTINF:{seconds:.6f},")
            entry.extinf_line = entry.line - 1
        entry.duration = seconds

    def fit_target_duration(self) -> int:
        """EXT-X-TARGETDURATION: the largest EXTINF rounded to the nearest integer
        (RFC 8216 4.3.3.1), at least 1; added after #EXTM3U when missing."""
        needed = max(1, max(round(entry.duration or 0) for entry in self.entries))
        line = f"#EXT-X-TARGETDURATION:{needed}"
        if self.target_line is None:
            self._insert(self.header_line + 1, line)
            self.target_line = self.header_line + 1
        else:
            self.lines[self.target_line] = line
        return needed

    def _insert(self, at: int, line: str) -> None:
        """Insert a line before index ``at``; every index at or after it moves down."""
        self.lines.insert(at, line)
        for entry in self.entries:
            if entry.line >= at:
                entry.line += 1
            if entry.extinf_line is not None and entry.extinf_line >= at:
                entry.extinf_line += 1
        if self.target_line is not None and self.target_line >= at:
            self.target_line += 1

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def _number(line: str, kind: Callable[[str], N]) -> N | str:
    """The finite number after the tag's colon (up to a comma), or why there is none."""
    text = line.split(":", 1)[1].split(",")[0].strip()
    try:
        value = kind(text)
    except ValueError:
        return f"{line[:80]!r}: {text[:40]!r} is not a number"
    if not math.isfinite(value):
        return f"{line[:80]!r}: not a finite number"
    return value
