"""The test bed: the real parts the demo, the tests and the benchmark run against.

A livekit-server and MinIO (built by ``scripts/setup`` into ``.cache/tools``), synthetic
and browser publishers, packet loss inside the private namespace, the benchmark harness.
It lives beside the product, not in it: ``pip install .`` ships none of it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout: .cache/tools, web/
TOOLS = ROOT / ".cache" / "tools" / "bin"


def module_command(module: str, *arguments: str) -> list[str]:
    """``python -m testbed.<module> ...``; run it with ``cwd=ROOT`` so that the child
    finds this package as ``-m`` finds it: in its working directory."""
    return [sys.executable, "-m", f"testbed.{module}", *arguments]
