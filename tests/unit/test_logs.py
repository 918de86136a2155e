"""Log lines: one record is one line, whatever the names in it."""

from __future__ import annotations

import json
import logging

import pytest

from publisher_hls_agent.logs import JsonFormatter, TextFormatter

pytestmark = pytest.mark.unit


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("publisher_hls_agent.test", logging.INFO, __file__, 1, message,
                              args, None)
    entry.__dict__.update(extra)
    return entry


def test_a_name_with_a_line_break_cannot_forge_a_line() -> None:
    forged = "alice\n2026-12-02 06:00:00,000 ERROR publisher_hls_agent: forged\r\x1b[2J"
    line = TextFormatter().format(record("participant %s joined", forged, room="r\nx"))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "alice\\n2026-12-02" in line and "\\x1b[2J" in line


def test_a_traceback_still_follows_its_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        entry = record("failed on %r", "x")
        entry.exc_info = sys.exc_info()
    head, _, rest = TextFormatter().format(entry).partition("\n")
    assert head.endswith("failed on 'x'") and "ValueError: boom" in rest


def test_json_lines_are_one_line_too() -> None:
    line = JsonFormatter().format(record("path %s", "/a\nb", participant="p\n"))
    assert "\n" not in line and json.loads(line)["message"] == "path /a\nb"
