"""Which process, on which machine: what a recording's marker file names as its writer,
so that a later agent can tell a live writer from a dead one whose pid was reused (a
restarted container numbers its processes the same way)."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def process_identity(pid: int | None = None) -> str | None:
    """``host/boot/pid/start``, or None if no such process runs here now (a zombie
    does not: it was killed, say, and its parent died before collecting it)."""
    pid = os.getpid() if pid is None else pid
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after the command, which may hold spaces
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None  # a zombie has ended: only its parent has not yet collected it
    return f"{socket.gethostname()}/{boot}/{pid}/{fields[19]}"  # field 22: its start time


def identity_alive(identity: str) -> bool | None:
    """Whether the process ``identity`` names still runs here; None when it ran on
    another machine, which cannot be asked. (Before a reboot of this one: it is dead.)"""
    host, _, rest = identity.partition("/")
    if host != socket.gethostname():
        return None
    try:
        pid = int(rest.split("/")[1])
    except (IndexError, ValueError):
        return False
    return process_identity(pid) == identity
