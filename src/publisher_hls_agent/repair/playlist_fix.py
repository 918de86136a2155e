"""What ``fix`` may do to a playlist (``inspection.playlist.MediaPlaylist``): which
playlists it takes, and which durations it replaces. Pure."""

from __future__ import annotations

from ..errors import PlaylistError
from ..inspection.playlist import NOT_A_PLAYLIST, Entry, MediaPlaylist

ABSURD = 24 * 3600.0  # an EXTINF beyond a day is a placeholder (GStreamer writes ~2^64 ns)


def editable_playlist(text: str) -> MediaPlaylist:
    """The media playlist in ``text``, which ``fix`` rewrites line by line;
    PlaylistError for anything else."""
    playlist = MediaPlaylist.parse(text)
    if playlist.header_line:  # fix adds its tags right after #EXTM3U, the first line
        raise PlaylistError(NOT_A_PLAYLIST)
    if playlist.master:
        raise PlaylistError("a master playlist: fix its media playlists one by one")
    if not playlist.entries:
        raise PlaylistError("the playlist names no segment")
    return playlist


def needs_fixing(entry: Entry, real: float | None, frame: float) -> bool:
    """Is the written EXTINF missing, negative, absurd or off by over a frame?"""
    written = entry.duration
    if written is None or written < 0 or written > ABSURD:
        return True
    return real is not None and abs(written - real) > max(frame, 0.001)


def written_target(playlist: MediaPlaylist) -> int | None:
    """The EXT-X-TARGETDURATION as written, for ``fix`` to report what it replaced:
    None unless the whole value is an integer (``check`` reads up to a comma, as in
    EXTINF; ``fix`` rewrites such a line, so it reports it as no target duration)."""
    if playlist.target_line is None:
        return None
    try:
        return int(playlist.lines[playlist.target_line].split(":", 1)[1].strip())
    except ValueError:
        return None
