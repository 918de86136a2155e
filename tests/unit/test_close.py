"""Closing a recording cut short (``repair/close.py``): a real recording, its process
"killed" (left unfinalized, its marker naming a dead writer), closed and checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from publisher_hls_agent.layout import OUTPUT_NAME, PLAYLIST_NAME, STARTED_NAME, SUMMARY_NAME
from publisher_hls_agent.processes import identity_alive, process_identity
from publisher_hls_agent.repair.close import close_interrupted, interrupted_recordings

from .recorder_room import AUDIO, VIDEO, Room
from .structure import check_structure

pytestmark = pytest.mark.unit


def a_dead_writer() -> str:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        identity = process_identity(child.pid)
    finally:
        child.kill()
        child.wait()
    assert identity is not None and identity_alive(identity) is False
    return identity


def cut_short(tmp_path: Path, opus: list[bytes], seconds: float) -> Path:
    """A recording of ``seconds`` whose process died before it finalized."""
    room = Room(tmp_path, auto_activate=True)
    room.reports_from = 0.0
    room.recorder.on_track_started(VIDEO)
    room.recorder.on_track_started(AUDIO)
    room.play(seconds, opus)
    folder = room.recorder.folder
    assert folder is not None and not (folder / SUMMARY_NAME).exists()
    with (folder / OUTPUT_NAME).open("ab") as output:
        output.write(b"G" + b"\x00" * 100)  # a TS packet half written when it died
    return folder


def test_a_recording_cut_short_is_closed_and_checks(tmp_path: Path,
                                                    opus_packets: list[bytes]) -> None:
    folder = cut_short(tmp_path, opus_packets, 5.3)
    assert interrupted_recordings(tmp_path) == []  # its writer (this process) still runs
    assert close_interrupted(folder) is None
    marker = json.loads((folder / STARTED_NAME).read_text())
    assert marker["room"] == "room" and marker["participant"] == "alice"
    (folder / STARTED_NAME).write_text(json.dumps({**marker, "writer": a_dead_writer()}))
    assert interrupted_recordings(tmp_path) == [folder]

    summary = close_interrupted(folder)
    assert summary is not None and summary["state"] == "interrupted"
    assert (summary["room"], summary["participant"]) == ("room", "alice")
    assert summary["started_at"] == marker["started_at"]
    # What was closed by then is kept (1 s segments: 5 of them); the one in progress is lost.
    assert len(summary["segments"]) == 5 and summary["duration"] == pytest.approx(5.0, abs=0.1)
    assert json.loads((folder / SUMMARY_NAME).read_text()) == summary
    assert not (folder / STARTED_NAME).exists()
    assert (folder / PLAYLIST_NAME).read_text().endswith("#EXT-X-ENDLIST\n")
    assert (folder / OUTPUT_NAME).stat().st_size % 188 == 0
    report = check_structure(folder)
    assert report.ok, report.render()
    assert close_interrupted(folder) is None and interrupted_recordings(tmp_path) == []


def test_a_recording_cut_short_before_its_first_segment_is_closed_empty(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    folder = cut_short(tmp_path, opus_packets, 0.5)
    marker = json.loads((folder / STARTED_NAME).read_text())
    (folder / STARTED_NAME).write_text(json.dumps({**marker, "writer": a_dead_writer()}))
    summary = close_interrupted(folder)
    assert summary is not None and summary["segments"] == [] and summary["duration"] == 0


def test_a_writer_on_another_machine_is_judged_by_how_long_its_folder_has_been_still(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    import os
    folder = cut_short(tmp_path, opus_packets, 2.5)
    marker = json.loads((folder / STARTED_NAME).read_text())
    (folder / STARTED_NAME).write_text(json.dumps({**marker, "writer": "elsewhere/b/7/9"}))
    assert interrupted_recordings(tmp_path) == []  # just written: maybe still recording
    for path in folder.iterdir():
        os.utime(path, (1, 1))
    assert interrupted_recordings(tmp_path) == [folder]


def test_a_process_identity_is_this_process_and_not_a_reused_pid() -> None:
    mine = process_identity()
    assert mine is not None and identity_alive(mine) is True
    host, boot, pid, start = mine.split("/")
    assert identity_alive(f"{host}/{boot}/{pid}/{int(start) + 1}") is False  # pid reused
    assert identity_alive(f"another-host/{boot}/{pid}/{start}") is None


def test_a_killed_process_not_yet_collected_is_not_alive() -> None:
    """SIGKILLed with its parent: a zombie until someone collects it, with its pid and
    start time as they were."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    identity = process_identity(child.pid)
    assert identity is not None and identity_alive(identity) is True
    child.kill()
    deadline = 200
    while Path(f"/proc/{child.pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
        deadline -= 1
        assert deadline, "the child never became a zombie"
        subprocess.run(["sleep", "0.01"], check=True)
    assert identity_alive(identity) is False
    child.wait()


def test_a_segment_written_whole_but_not_yet_named_is_named_when_closed(
        tmp_path: Path, opus_packets: list[bytes]) -> None:
    """Killed between a segment's file and the playlist that names it: the segment is
    in the closed recording, with the duration its timestamps say."""
    folder = cut_short(tmp_path, opus_packets, 5.3)
    playlist = (folder / PLAYLIST_NAME).read_text().splitlines()
    last_extinf = max(i for i, line in enumerate(playlist) if line.startswith("#EXTINF"))
    written = float(playlist[last_extinf].split(":")[1].rstrip(","))
    (folder / PLAYLIST_NAME).write_text("\n".join(playlist[:last_extinf - 1]) + "\n")
    marker = json.loads((folder / STARTED_NAME).read_text())
    (folder / STARTED_NAME).write_text(json.dumps({**marker, "writer": a_dead_writer()}))
    summary = close_interrupted(folder)
    assert summary is not None and len(summary["segments"]) == 5
    assert summary["segments"][-1]["name"] == "segment00004.ts"
    assert summary["segments"][-1]["duration"] == pytest.approx(written, abs=0.03)
    report = check_structure(folder)
    assert report.ok, report.render()
