"""A media playlist as lines, with what ``fix`` may change: segment durations and the
target duration. Pure. Every other line is kept as it was."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

ABSURD = 24 * 3600.0  # an EXTINF beyond a day is a placeholder (GStreamer writes ~2^64 ns)
_EXTINF = re.compile(r"^#EXTINF:([^,]*)(,.*)?$")


class PlaylistError(ValueError):
    """Not a media playlist."""


@dataclass
class Item:
    uri: str
    line: int  # index of the URI line
    extinf_line: int | None  # index of its #EXTINF line, if any
    duration: float | None  # as written; None when missing or unreadable


@dataclass
class MediaPlaylist:
    lines: list[str]
    items: list[Item] = field(default_factory=list)
    target_line: int | None = None

    @classmethod
    def parse(cls, text: str) -> MediaPlaylist:
        lines = text.splitlines()
        if not lines or lines[0].strip() != "#EXTM3U":
            raise PlaylistError("not an HLS playlist: the first line is not #EXTM3U")
        if any(line.startswith("#EXT-X-STREAM-INF") for line in lines):
            raise PlaylistError("a master playlist: fix its media playlists one by one")
        playlist = cls(lines)
        extinf: tuple[int, float | None] | None = None
        for index, raw in enumerate(lines):
            line = raw.strip()
            if line.startswith("#EXT-X-TARGETDURATION:"):
                playlist.target_line = index
            elif (match := _EXTINF.match(line)) is not None:
                extinf = (index, _number(match.group(1)))
            elif line and not line.startswith("#"):
                where, duration = extinf if extinf is not None else (None, None)
                playlist.items.append(Item(line, index, where, duration))
                extinf = None
        if not playlist.items:
            raise PlaylistError("the playlist names no segment")
        return playlist

    def needs_fixing(self, item: Item, real: float | None, frame: float) -> bool:
        """Is the written EXTINF missing, negative, absurd or off by over a frame?"""
        written = item.duration
        if written is None or written < 0 or written > ABSURD:
            return True
        return real is not None and abs(written - real) > max(frame, 0.001)

    def set_duration(self, item: Item, seconds: float) -> None:
        text = f"#EXTINF:{seconds:.6f},"
        if item.extinf_line is not None:
            title = _EXTINF.match(self.lines[item.extinf_line].strip())
            suffix = title.group(2) if title and title.group(2) else ","
            self.lines[item.extinf_line] = f"#EXTINF:{seconds:.6f}{suffix}"
        else:  # a segment without EXTINF gets one just before its URI
            self.lines.insert(item.line, text)
            for other in self.items:
                if other.line >= item.line:
                    other.line += 1
                if other.extinf_line is not None and other.extinf_line >= item.line:
                    other.extinf_line += 1
            if self.target_line is not None and self.target_line >= item.line:
                self.target_line += 1
            item.extinf_line = item.line - 1
        item.duration = seconds

    def target_duration(self) -> int | None:
        if self.target_line is None:
            return None
        return _int(self.lines[self.target_line].split(":", 1)[1])

    def fit_target_duration(self) -> int:
        """EXT-X-TARGETDURATION: the largest EXTINF rounded to the nearest integer
        (RFC 8216 4.3.3.1), at least 1; added after #EXTM3U when missing."""
        needed = max(1, max(round(item.duration or 0) for item in self.items))
        line = f"#EXT-X-TARGETDURATION:{needed}"
        if self.target_line is None:
            self.lines.insert(1, line)
            self.target_line = 1
            for item in self.items:
                item.line += 1
                if item.extinf_line is not None:
                    item.extinf_line += 1
        else:
            self.lines[self.target_line] = line
        return needed

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None
