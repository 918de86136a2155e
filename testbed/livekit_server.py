"""A real livekit-server in dev mode on loopback, for the demo and the tests.

The binary is built by ``scripts/install-tools`` (``go install``, pinned) into
``.cache/tools/bin/livekit-server``; ``LIVEKIT_SERVER_BIN`` points elsewhere.

Everything stays on 127.0.0.1: the server binds there, advertises a loopback ICE
candidate (``enable_loopback_candidate``), and the room client adds a loopback host
candidate of its own (see ``room/ice.py``), so no packet ever leaves the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import TOOLS

API_KEY = "devkey"
API_SECRET = "secret-secret-secret-secret-secret"  # >= 32 bytes: the server warns below that

DEFAULT_BINARY = TOOLS / "livekit-server"


class LiveKitServerError(RuntimeError):
    """The test server could not be found or did not come up."""


@dataclass(frozen=True)
class LiveKitServer:
    """A running server: where to reach it and with which credentials."""

    url: str
    http_url: str
    api_key: str
    api_secret: str
    log_path: Path
    udp_port: int = 0  # its media port: what loss on one leg only matches (testbed/loss.py)
    pid: int = 0


def find_binary() -> Path:
    configured = os.environ.get("LIVEKIT_SERVER_BIN")
    candidates = [Path(configured)] if configured else [DEFAULT_BINARY]
    on_path = shutil.which("livekit-server")
    if on_path and not configured:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise LiveKitServerError(
        f"livekit-server not found at {candidates[0]}; run scripts/install-tools "
        "(or set LIVEKIT_SERVER_BIN)"
    )


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config_yaml(http_port: int, udp_port: int, tcp_port: int) -> str:
    return f"""\
port: {http_port}
bind_addresses: ["127.0.0.1"]
keys:
  {API_KEY}: {API_SECRET}
rtc:
  udp_port: {udp_port}
  tcp_port: {tcp_port}
  node_ip: 127.0.0.1
  use_external_ip: false
  enable_loopback_candidate: true
  ips:
    includes: ["127.0.0.1/32"]
  # Without STUN servers of its own the server hands clients Google's public ones, and
  # libwebrtc then looks them up and sends to them. A dead loopback port instead.
  stun_servers: ["127.0.0.1:9"]
logging:
  level: {os.environ.get("LIVEKIT_LOG_LEVEL", "info")}
"""


def _wait_until_up(http_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LiveKitServerError(
                f"livekit-server exited with {process.returncode}; see {log_path}:\n"
                + log_path.read_text(errors="replace")[-2000:]
            )
        try:
            with urllib.request.urlopen(http_url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise LiveKitServerError(f"livekit-server did not answer on {http_url} within 30 s")


@contextlib.contextmanager
def running_server(
    log_dir: Path | None = None, http_port: int | None = None
) -> Iterator[LiveKitServer]:
    """Start livekit-server on free loopback ports; stop it on exit."""
    binary = find_binary()
    work = Path(tempfile.mkdtemp(prefix="livekit-server-", dir=log_dir))
    http_port = http_port or free_port()
    config = work / "livekit.yaml"
    udp_port = free_port(socket.SOCK_DGRAM)
    config.write_text(_config_yaml(http_port, udp_port, free_port()), encoding="utf-8")
    log_path = work / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(binary), "--dev", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    http_url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_until_up(http_url, process, log_path)
        yield LiveKitServer(
            url=f"ws://127.0.0.1:{http_port}",
            http_url=http_url,
            api_key=API_KEY,
            api_secret=API_SECRET,
            log_path=log_path,
            udp_port=udp_port,
            pid=process.pid,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
