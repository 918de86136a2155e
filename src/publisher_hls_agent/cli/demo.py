"""``demo``: everything on this machine, on loopback, with nothing to configure.

Starts the pinned livekit-server in dev mode, the agent worker (``run``), a room with
the agent's dispatch and a synthetic publisher in it (the official LiveKit SDK sending
pre-encoded H.264 and Opus); the agent records the publisher to HLS; then the demo
prints the recording folder and what ``check`` says of it.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=10.0, metavar="S",
                        help="seconds to record (default 10)")
    parser.add_argument("--output", type=Path, default=Path("publisher-hls-output"),
                        metavar="DIR", help="where the recording goes (default %(default)s)")
    parser.add_argument("--segment-duration", type=float, default=2.0, metavar="S")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)


def execute(options: argparse.Namespace) -> int:
    import asyncio

    from ..testbed.demo import run_demo
    from .common import setup_logging

    setup_logging("WARNING")
    return asyncio.run(run_demo(duration=options.duration, output=options.output,
                                width=options.width, height=options.height, fps=options.fps,
                                segment_duration=options.segment_duration))
