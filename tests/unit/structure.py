"""``check`` for the stand-in media unit tests write (H.264 and AAC headers before
filler bytes): the structural rules only, as the frames do not decode. Decoding is
tested on real media (``test_check_decode.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from publisher_hls_agent.hls.check import Report, check_recording


def check_structure(path: Path, **options: Any) -> Report:
    return check_recording(path, decode=False, **options)
