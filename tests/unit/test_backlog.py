"""The transcoder's backlog: never refuses a frame, keeps their order through memory and
the spill file, and leaves nothing on disk."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from publisher_hls_agent.room.backlog import Frame, FrameBacklog

pytestmark = pytest.mark.unit


def frames(count: int, size: int = 1000) -> list[Frame]:
    return [(bytes([i % 256]) * (size + i), i * 3000, float(i), i + 0.5) for i in range(count)]


def drain(backlog: FrameBacklog) -> list[Frame]:
    backlog.close()
    out = []
    while (frame := backlog.get()) is not None:
        out.append(frame)
    return out


def test_past_its_memory_budget_frames_go_through_a_file_in_order(tmp_path: Path) -> None:
    backlog = FrameBacklog(tmp_path, memory_budget=10_000)
    sent = frames(100)
    for frame in sent[:50]:
        backlog.put(frame)
    assert backlog.spilled > 0 and len(backlog) == 50
    got = [backlog.get() for _ in range(20)]  # the reader catches up a little...
    for frame in sent[50:]:  # ...while more come, still after the spilled ones
        backlog.put(frame)
    assert got + drain(backlog) == sent
    assert backlog.most == 80
    assert list(tmp_path.iterdir()) == []  # anonymous: nothing to clean up, ever


def test_a_spill_folder_that_does_not_exist_falls_back_to_the_temporary_one(
        tmp_path: Path) -> None:
    backlog = FrameBacklog(tmp_path / "not-yet", memory_budget=0)
    sent = frames(10)
    for frame in sent:
        backlog.put(frame)
    assert backlog.spilled == 10
    assert drain(backlog) == sent


def test_with_no_disk_at_all_frames_stay_in_memory(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    backlog = FrameBacklog(tmp_path, memory_budget=5_000)
    sent = frames(20)
    for frame in sent[:10]:
        backlog.put(frame)
    spilled = backlog.spilled
    assert spilled

    def full(*args: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    for frame in sent[10:]:
        backlog.put(frame)
    assert backlog.spilled == spilled  # nothing more went to the file, nothing was lost
    assert drain(backlog) == sent


def test_a_waiting_reader_gets_frames_as_they_come_and_none_at_the_end(
        tmp_path: Path) -> None:
    backlog = FrameBacklog(tmp_path, memory_budget=3_000)
    got: list[Frame] = []

    def read() -> None:
        while (frame := backlog.get()) is not None:
            got.append(frame)

    reader = threading.Thread(target=read)
    reader.start()
    sent = frames(200)
    for frame in sent:
        backlog.put(frame)
    backlog.close()
    reader.join(10)
    assert not reader.is_alive()
    assert got == sent
