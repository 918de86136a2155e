"""A recording's folder: the names of the files in it. Pure.

The writer, the recorder, the upload, the preview page, ``check`` and ``fix`` all find
a recording's files by these names; they are spelled here once so that no two of them
can drift apart.

``recording.json`` has no schema of its own: the recorder writes a plain dict
(``recorder.py``) and each reader takes only the fields it needs, checking their types.
"""

from __future__ import annotations

import re

PLAYLIST_NAME = "playlist.m3u8"
INIT_NAME = "init.mp4"  # fMP4: the init segment EXT-X-MAP names
INIT_GLOB = "init*.mp4"  # and those of later configurations (``init_segment_name``)
OUTPUT_NAME = "output.ts"  # MPEG-TS: the whole recording in one file, beside the segments
SEGMENT_PREFIX = "segment"
TS_SEGMENT_SUFFIX = ".ts"
FMP4_SEGMENT_SUFFIX = ".m4s"
SUMMARY_NAME = "recording.json"  # written once the recording is finalized
# Written as a recording begins and removed once it is finalized: whose recording it is,
# and which process writes it. Left behind, it marks a recording cut short (the agent
# killed), which ``repair/close.py`` closes.
STARTED_NAME = ".recording.json"
UPLOAD_STATE_NAME = ".upload.json"  # what of the recording is in the bucket already
THUMBNAILS_FOLDER = "thumbnails"  # thumbNNNNN.jpg (png, webp) and their playlist
THUMBNAILS_PLAYLIST = "thumbnails.m3u8"
THUMBNAIL_NAME = re.compile(r"^thumb\d+\.(jpg|png|webp)$")  # what the preview may serve
SEGMENT_GLOB = f"{SEGMENT_PREFIX}*"  # finds a folder's segments (``Path.glob``)

# What a player may fetch from a recording folder: the playlist, the init segment, and
# segments by their pattern (any number of digits: the sequence outgrows five).
PLAYABLE_NAME = re.compile(
    rf"^({re.escape(PLAYLIST_NAME)}|init(-\d+)?\.mp4|{SEGMENT_PREFIX}\d+"
    rf"({re.escape(TS_SEGMENT_SUFFIX)}|{re.escape(FMP4_SEGMENT_SUFFIX)}))$")


def init_segment_name(configuration: int) -> str:
    """fMP4: ``init.mp4`` for the recording's first video configuration, ``init-1.mp4``
    for the next (a publisher that changed its picture size), and so on."""
    return INIT_NAME if configuration == 0 else f"init-{configuration}.mp4"


def segment_name(sequence: int, suffix: str) -> str:
    """``segment00042.ts``: sorted by name is sorted by sequence up to 99999."""
    return f"{SEGMENT_PREFIX}{sequence:05d}{suffix}"
