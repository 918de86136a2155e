"""Log lines for people (text) or for log collectors (JSON, ``LOG_FORMAT=json``).

A line about a recording carries its room and participant as ``extra`` fields (the
recorder and the room client log through adapters that add them); both formats show
them, so every such line names the recording it is about.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

CONTEXT_FIELDS = ("room", "participant", "job_id")
# Messages carry names and paths that others chose (rooms, identities, request paths):
# a line break in one must not start a forged line of its own.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)} | {
    0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


def _context(record: logging.LogRecord) -> dict[str, str]:
    return {name: str(getattr(record, name)) for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None}


class TextFormatter(logging.Formatter):
    """One line per record (a traceback follows it on lines of its own)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.translate(_CONTROL)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context(record)
        if not context:
            return line
        head, newline, rest = line.partition("\n")  # tracebacks stay below the context
        tags = " ".join(f"{name}={value!r}" for name, value in context.items())
        return f"{head} [{tags}]{newline}{rest}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aioice narrates every ICE check at INFO; its warnings are what matters here.
    logging.getLogger("aioice").setLevel(max(root.level, logging.WARNING))
