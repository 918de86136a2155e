"""Fixtures shared by the test tiers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher_hls_agent.testbed.livekit_server import LiveKitServer, running_server


@pytest.fixture(scope="session")
def livekit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKitServer]:
    """One real livekit-server (dev mode, loopback) for the whole session."""
    with running_server(log_dir=Path(tmp_path_factory.mktemp("livekit"))) as server:
        yield server
