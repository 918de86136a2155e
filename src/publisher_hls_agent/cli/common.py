"""What every subcommand shares: logging set-up and loading the configuration."""

from __future__ import annotations

import os
import sys

from .. import logs
from ..config import Config
from ..errors import ConfigError

EXIT_CONFIG = 2


def setup_logging(level: str | None = None) -> None:
    """Logging as LOG_LEVEL and LOG_FORMAT say (read before the whole configuration is,
    so that a configuration error is logged the same way; an invalid LOG_FORMAT falls
    back to text here and is reported by the configuration)."""
    log_format = os.environ.get("LOG_FORMAT", "text").strip().lower()
    logs.setup_logging(level or os.environ.get("LOG_LEVEL", "INFO"),
                       "json" if log_format == "json" else "text")


def load_config() -> Config | None:
    """The configuration from the environment, or None after printing why not."""
    try:
        return Config.from_mapping(os.environ)
    except ConfigError as exc:
        print(f"publisher-hls-agent: configuration error: {exc}", file=sys.stderr)
        return None
