"""Moved to ``inspection/mp4parse.py``; this name stays only for the callers not yet
switched (tests/unit/test_fmp4.py). Remove it with them."""

from ..inspection.mp4parse import Fragment, Mp4Error, Track, read_fragments, read_init

__all__ = ["Fragment", "Mp4Error", "Track", "read_fragments", "read_init"]
