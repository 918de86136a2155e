"""Moved to ``inspection/tsparse.py``; this name stays only for the callers not yet
switched (tests/integration/test_fix.py, test_recording.py). Remove it with them."""

from ..inspection.tsparse import Pes, Program, TsError, packets, read_pes

__all__ = ["Pes", "Program", "TsError", "packets", "read_pes"]
