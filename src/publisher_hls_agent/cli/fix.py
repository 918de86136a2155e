"""``fix PATH``: repair an HLS recording made by another tool (MPEG-TS segments):
timestamps made to start at zero, EXTINF and EXT-X-TARGETDURATION made true. One of
ours cut short (the agent killed while recording) is closed instead, in place."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_UNUSABLE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a playlist, or a folder holding one")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--output", type=Path, metavar="DIR",
                       help="write the fixed playlist and segments here; the input is "
                       "left untouched")
    where.add_argument("--in-place", action="store_true",
                       help="replace the input (the originals are kept in a backup folder)")
    parser.add_argument("--no-backup", action="store_true",
                        help="with --in-place: keep no copy of the originals")


def execute(options: argparse.Namespace) -> int:
    from ..errors import FixError
    from ..layout import SUMMARY_NAME
    from ..repair.close import close_interrupted
    from ..repair.fix import fix_recording

    if options.output is not None and options.output.resolve() == (
            options.path if options.path.is_dir() else options.path.parent).resolve():
        print("publisher-hls-agent: --output is the input's folder; use --in-place",
              file=sys.stderr)
        return EXIT_UNUSABLE
    folder = options.path if options.path.is_dir() else options.path.parent
    if options.in_place and (closed := close_interrupted(folder)) is not None:
        print(f"closed: a recording cut short, {len(closed['segments'])} segments, "
              f"{closed['duration']:.1f} s; {folder / SUMMARY_NAME} says interrupted")
        return 0
    try:
        result = fix_recording(options.path, options.output,
                               backup=not options.no_backup)
    except FixError as exc:
        print(f"publisher-hls-agent: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    for change in result.changes:
        print(f"changed: {change}")
    for problem in result.problems:
        print(f"problem: {problem}")
    print(f"wrote {len(result.written)} files into {result.written[-1].parent}")
    return 0
