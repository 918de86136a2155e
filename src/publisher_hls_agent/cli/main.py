"""``publisher-hls-agent``: the command line.

Subcommands live in their own modules and are imported lazily, so ``--help`` and a
configuration error answer at once without loading aiortc, PyAV or the LiveKit SDK.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

PROG = "publisher-hls-agent"

# name -> (module in this package, one-line help)
COMMANDS = {
    "run": ("run", "start the agent (the default)"),
    "dispatch-job": ("dispatch_job", "create a room whose publishers the agent records"),
    "upload": ("upload", "upload a finished recording to the configured S3 store"),
    "fix": ("fix", "repair another tool's recording: timestamps from zero, true durations"),
    "check": ("check", "validate a recording against the HLS rules; exit 1 on a violation"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Record every publishing participant of a LiveKit room to HLS, "
        "H.264 passed through untouched. Configured by environment variables "
        "(see README.md).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(f"{__package__}.{module}").add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0].startswith("-") and args[0] not in ("-h", "--help")):
        args.insert(0, "run")
    options = build_parser().parse_args(args)
    module = importlib.import_module(f"{__package__}.{COMMANDS[options.command][0]}")
    return int(module.execute(options))


if __name__ == "__main__":
    sys.exit(main())
