"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from .recorder_room import silent_opus_packets


@pytest.fixture(scope="module")
def opus_packets() -> list[bytes]:
    return silent_opus_packets()
