"""``demo``: everything on this machine, on loopback, with nothing to configure.

Starts the pinned livekit-server in dev mode, a synthetic publisher (the official
LiveKit SDK sending pre-encoded H.264 and Opus), and the room client receiving that
publisher's media without decoding it; prints what arrives, per track, every second.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=10.0, metavar="S",
                        help="seconds to run (default 10)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)


def execute(options: argparse.Namespace) -> int:
    import asyncio

    from ..testbed.demo import run_demo
    from .common import setup_logging

    setup_logging("WARNING")
    return asyncio.run(run_demo(duration=options.duration, width=options.width,
                                height=options.height, fps=options.fps))
