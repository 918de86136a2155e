"""Which local addresses aioice offers as ICE host candidates.

aioice never offers 127.0.0.1. An agent that talks to a LiveKit server on the same
machine (the demo, the tests, a production agent co-located with its server) should
use loopback and nothing else, so for a loopback server URL we offer exactly that.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import urllib.parse
from collections.abc import Callable

import aioice.ice
from aiortc import RTCIceCandidate, RTCPeerConnection
from aiortc.sdp import candidate_from_sdp
from livekit.protocol import rtc

_original_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses


def is_loopback_url(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except OSError:
            return False


def _loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else ["::1"]


def use_loopback_candidates(enabled: bool) -> None:
    """Offer only loopback host candidates (True) or aioice's default (False).

    Process-wide: aioice looks the function up in its module on each gathering.
    """
    chosen = _loopback_only if enabled else _original_host_addresses
    aioice.ice.get_host_addresses = chosen  # type: ignore[assignment]


async def add_trickled_candidate(pc: RTCPeerConnection, trickle: rtc.TrickleRequest,
                                 early: list[rtc.TrickleRequest]) -> None:
    """Add a candidate the server trickled, or keep it in ``early`` while ``pc`` has no
    remote description yet (the caller adds those once it has)."""
    if pc.remoteDescription is None:
        early.append(trickle)
        return
    candidate = candidate_from_trickle(trickle)
    if candidate is not None:  # None: the end of candidates
        with contextlib.suppress(ValueError):
            await pc.addIceCandidate(candidate)


def candidate_from_trickle(trickle: rtc.TrickleRequest) -> RTCIceCandidate | None:
    """The ICE candidate a LiveKit trickle message carries (None: end of candidates)."""
    init = json.loads(trickle.candidateInit)
    line = init.get("candidate", "")
    if not line:
        return None
    candidate = candidate_from_sdp(line.removeprefix("candidate:"))
    candidate.sdpMid = init.get("sdpMid")
    candidate.sdpMLineIndex = init.get("sdpMLineIndex")
    return candidate
