"""Fixtures shared by the test tiers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from testbed.livekit_server import LiveKitServer, running_server
from testbed.minio import MinIO, running_minio


@pytest.fixture(scope="session")
def livekit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKitServer]:
    """One real livekit-server (dev mode, loopback) for the whole session."""
    with running_server(log_dir=Path(tmp_path_factory.mktemp("livekit"))) as server:
        yield server


@pytest.fixture(scope="session")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinIO]:
    """One real MinIO (go install'ed, loopback) for the whole session."""
    with running_minio(Path(tmp_path_factory.mktemp("minio"))) as store:
        yield store
