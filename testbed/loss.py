"""Packet loss for the tests and the benchmark: nftables rules in the private namespace.

Every test talks over the loopback device of the namespace ``scripts/netns-run`` makes
(the veth address is local too), and an input-hook rule sees each datagram once, so
``numgen random`` drops the same share of UDP in both directions: media, RTCP, NACKs
and retransmissions alike. TCP (signalling, S3) is left alone, as a lossy path's
retransmissions would hide it anyway.

The rules go only into the network namespace ``scripts/netns-run`` made: it names
that namespace and the one it left (``NETNS_RUN_PRIVATE``, ``NETNS_RUN_OUTER``), and
``PacketLoss`` refuses to start anywhere else, where it would drop the host's traffic.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

TABLE = "publisher_hls_loss"


class LossError(RuntimeError):
    pass


def in_private_namespace() -> bool:
    """True in the namespace ``scripts/netns-run`` made, and only there."""
    try:
        here = os.readlink("/proc/self/ns/net")
    except OSError:
        return False  # cannot tell: treat it as the machine's
    private, outer = os.environ.get("NETNS_RUN_PRIVATE"), os.environ.get("NETNS_RUN_OUTER")
    return bool(private and outer) and here == private != outer


def loss_available() -> bool:
    return shutil.which("nft") is not None and in_private_namespace()


class PacketLoss:
    """Random UDP loss of ``percent`` (steady) plus an optional burst, both directions."""

    def __init__(self) -> None:
        if not in_private_namespace():
            raise LossError("packet loss is emulated only inside the test's own network "
                            "namespace (scripts/netns-run); refusing to touch this one")
        if shutil.which("nft") is None:
            raise LossError("nft not found: install Debian's nftables (scripts/setup does)")
        self._steady = 0.0
        self._burst = 0.0
        self._only = ""
        _nft(f"add table inet {TABLE}\n"
             f"add chain inet {TABLE} input {{ type filter hook input priority 0; "
             "policy accept; }")
        self._apply()

    def set(self, percent: float, only: str = "") -> None:
        """Drop ``percent`` % of UDP datagrams from now on (0 for none); ``only``: an
        nft match that narrows it to one leg, e.g. ``udp sport 7882`` for what the SFU
        sends (see ``LiveKitServer.udp_port``)."""
        self._steady, self._only = percent, only
        self._apply()

    async def burst(self, percent: float, seconds: float) -> None:
        """Add ``percent`` % more loss for ``seconds``, on top of the steady loss."""
        self._burst = percent
        self._apply()
        try:
            await asyncio.sleep(seconds)
        finally:
            self._burst = 0.0
            self._apply()

    def close(self) -> None:
        _nft(f"delete table inet {TABLE}")

    def __enter__(self) -> PacketLoss:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _apply(self) -> None:
        commands = [f"flush chain inet {TABLE} input"]
        for percent in (self._steady, self._burst):
            if percent > 0:  # numgen in 1/10,000ths: 0.01 % steps
                commands.append(f"add rule inet {TABLE} input meta l4proto udp {self._only} "
                                f"numgen random mod 10000 lt {round(percent * 100)} drop")
        _nft("\n".join(commands))


def _nft(script: str) -> None:
    result = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise LossError(f"nft failed on {script!r}: {result.stderr.strip()}")
