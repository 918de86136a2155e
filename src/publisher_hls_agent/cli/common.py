"""What every subcommand shares: logging set-up and loading the configuration."""

from __future__ import annotations

import logging
import os
import sys

from ..config import Config, ConfigError

EXIT_CONFIG = 2


def setup_logging(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def load_config() -> Config | None:
    """The configuration from the environment, or None after printing why not."""
    try:
        return Config.from_mapping(os.environ)
    except ConfigError as exc:
        print(f"publisher-hls-agent: configuration error: {exc}", file=sys.stderr)
        return None
