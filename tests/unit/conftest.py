"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from .recorder_room import opus_packets_of


@pytest.fixture(scope="module")
def opus_packets() -> list[bytes]:
    return opus_packets_of(400)  # silence
