from datetime import datetime
from pathlib import Path

import pytest

from publisher_hls_agent.hls.names import create_recording_folder, safe_part

pytestmark = pytest.mark.unit

HOSTILE = ["../../etc", "a/b", "a\\b", "nul\x00byte", "x" * 300, "😀🎥", "..", ".", "",
           "con\r\nsole", "/abs/path", "~root", "space name"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_become_one_safe_component(name: str) -> None:
    part = safe_part(name)
    assert part and part not in (".", "..")
    assert len(part) <= 64 + 17
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in part)


def test_plain_names_are_kept_and_different_names_stay_different() -> None:
    assert safe_part("room-1.a_b") == "room-1.a_b"
    assert safe_part("a/b") != safe_part("a\\b") != safe_part("a_b")
    assert safe_part("x" * 300) != safe_part("x" * 299)


@pytest.mark.parametrize("name", HOSTILE)
def test_folders_stay_inside_the_output_dir(tmp_path: Path, name: str) -> None:
    folder = create_recording_folder(tmp_path / "out", name, name, datetime(2026, 1, 2, 3, 4, 5))
    assert folder.parent == tmp_path / "out"
    assert folder.resolve().is_relative_to((tmp_path / "out").resolve())


def test_two_recordings_never_share_a_folder(tmp_path: Path) -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, 678000)
    first = create_recording_folder(tmp_path, "room", "alice", started)
    second = create_recording_folder(tmp_path, "room", "alice", started)
    assert first != second
    assert first.name == "room_alice_20260102-030405.678"


def test_the_mapping_is_one_to_one() -> None:
    """A clean name that looks like a hashed one is hashed too (it was kept: 'a/' and
    'a-b3dda5b6' shared a folder, and '' the folder 'e3b0c442')."""
    for name in ("a/", "", "x" * 300, "room with spaces"):
        hashed = safe_part(name)
        assert safe_part(hashed) != hashed  # its hashed form, as a name, maps elsewhere
    assert safe_part("a/") != safe_part("a-" + safe_part("a/").rsplit("-", 1)[1])
    assert safe_part("e3b0c442") == "e3b0c442"  # 8 digits alone are a plain name now
    assert safe_part("deadbeefdeadbeef") != "deadbeefdeadbeef"
    parts = {safe_part(f"n/{i}") for i in range(100_000)}
    assert len(parts) == 100_000  # 32-bit digests collided by chance after 90,616 names
