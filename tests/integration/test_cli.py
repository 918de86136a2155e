"""The command line refuses what cannot work, naming the variable, before doing anything."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # processes, not milliseconds

BASE = {"PATH": os.environ["PATH"], "LIVEKIT_URL": "ws://127.0.0.1:9",
        "LIVEKIT_API_KEY": "key", "LIVEKIT_API_SECRET": "a-secret-long-enough-to-sign-with"}


def run(*arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "publisher_hls_agent", *arguments],
                          env={**BASE, **env}, capture_output=True, text=True, timeout=60)


def test_a_missing_secret_stops_with_status_2_naming_it(tmp_path: Path) -> None:
    result = run("run", LIVEKIT_API_SECRET="", OUTPUT_DIR=str(tmp_path))
    assert result.returncode == 2 and "LIVEKIT_API_SECRET" in result.stderr


def test_an_output_dir_that_cannot_be_written_stops_the_agent(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run("run", OUTPUT_DIR=str(blocker / "recordings"), HTTP_PORT="0")
    assert result.returncode == 2 and "OUTPUT_DIR" in result.stderr


def test_an_http_port_in_use_stops_the_agent(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("run", OUTPUT_DIR=str(tmp_path), HTTP_HOST="127.0.0.1",
                     HTTP_PORT=str(port))
    assert result.returncode == 2 and "HTTP_HOST/HTTP_PORT" in result.stderr
    assert BASE["LIVEKIT_API_SECRET"] not in result.stderr


def test_dispatch_job_refuses_metadata_that_is_not_json() -> None:
    result = run("dispatch-job", "--room", "r", "--metadata", "{nope")
    assert result.returncode == 2 and "--metadata must be JSON" in result.stderr


def test_fix_refuses_input_that_is_not_a_playlist(tmp_path: Path) -> None:
    (tmp_path / "index.m3u8").write_text("hello")
    result = run("fix", str(tmp_path), "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and "not an HLS playlist" in result.stderr
