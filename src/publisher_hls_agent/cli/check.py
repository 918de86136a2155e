"""``check PATH``: validate a recording (folder or playlist); exit 1 on any violation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..layout import PLAYLIST_NAME


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help=f"a recording folder or its {PLAYLIST_NAME}")
    parser.add_argument("--live", action="store_true",
                        help="the recording is still running: do not require EXT-X-ENDLIST")
    parser.add_argument("--no-decode", dest="decode", action="store_false",
                        help="check the structure only; by default every frame is also "
                        "decoded (a recording of ciphertext or corrupt media has the "
                        "right structure)")


def execute(options: argparse.Namespace) -> int:
    from ..errors import CheckError
    from ..hls.check import check_recording

    try:
        report = check_recording(options.path, require_end=not options.live,
                                 decode=options.decode)
    except CheckError as exc:
        print(f"publisher-hls-agent check: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1
