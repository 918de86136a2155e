"""Where a recording's files go in the bucket, and what they are. Pure.

``{S3_PREFIX}{room}/{participant}/{recording}/{file}`` as the original agent laid
them out, plus one folder per recording (the local folder's timestamp) so that a
participant recorded twice never overwrites the first recording. Room and participant
are made safe exactly as local folder names are: no name can climb out of the prefix.
"""

from __future__ import annotations

from pathlib import Path

from ..hls.names import safe_part

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}


def recording_id(folder: Path) -> str:
    """The local folder's timestamp (and its counter, when two share a millisecond)."""
    return folder.name.rsplit("_", 1)[-1]


def recording_prefix(prefix: str, room: str, participant: str, folder: Path) -> str:
    """The key prefix of one recording; ``prefix`` is S3_PREFIX as the config left it
    (empty, or ending with ``/`` and free of ``.``/``..`` segments)."""
    return f"{prefix}{safe_part(room)}/{safe_part(participant)}/{recording_id(folder)}/"


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")
