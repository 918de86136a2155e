"""A track's frames through LiveKit's end-to-end decryption (``media/e2ee.py``), with
what a recorder needs around it: the SFU's own frames dropped, failures counted and
logged (never the key), and a verdict once nothing has decrypted for a while.

A frame that does not decrypt is dropped, never written: ciphertext in a segment is a
recording no player decodes. Its reader then treats it as a lost frame (the next
keyframe resumes the picture). A key the publisher ratcheted is followed (the ring's
ratchet window); one no ratchet reaches (a wrong passphrase, a key the application set
at another index) makes every frame fail, and after ``GIVE_UP`` seconds of that the
track is reported as one the recorder cannot decrypt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..config import E2EEConfig
from ..media.e2ee import (
    Decrypted,
    FrameDecryptor,
    ParameterSetsAlone,
    ServerInjected,
    is_server_injected,
)
from ..media.e2ee_keys import KeyDerivation, KeyRingOptions, SharedKeyRing

logger = logging.getLogger(__name__)

GIVE_UP = 10.0  # seconds of frames none of which decrypted
CANNOT_DECRYPT = "cannot decrypt (wrong E2EE key?)"


def key_ring(config: E2EEConfig) -> SharedKeyRing:
    """The room's keys, as a publisher given the same passphrase has them, at whatever
    key index its frames name. Runs the key derivation (PBKDF2: about 10 ms; once more
    for each other index named): call it off the event loop."""
    options = KeyRingOptions(ratchet_salt=config.ratchet_salt.encode(),
                             key_derivation=KeyDerivation(config.key_derivation))
    return SharedKeyRing.at_every_index(config.passphrase, options)


class TrackDecryption:
    """One track's frames, decrypted in arrival order."""

    def __init__(self, keys: SharedKeyRing, codec: str, sif_trailer: bytes, track_sid: str,
                 cannot_decrypt: Callable[[str], None]) -> None:
        """``codec``: the track's MIME type; ``sif_trailer``: the room's, from the join
        (what ends the SFU's own frames); ``cannot_decrypt(reason)`` is called once,
        when the track is given up on."""
        self._decryptor = FrameDecryptor(keys, codec, sif_trailer)
        self._sif_trailer = sif_trailer
        self._track_sid = track_sid
        self._cannot_decrypt = cannot_decrypt
        self.decrypted = 0
        self.key_indexes: set[int | None] = set()  # those the decrypted frames named
        self.failures = 0  # frames dropped because they did not decrypt
        self.server_injected = 0  # the SFU's own frames (blank video, silence), dropped
        self.fragments = 0  # keyframes cut to their clear parameter sets, dropped
        self._failing_since: float | None = None  # arrival of the first of a run of failures
        self.given_up = False

    def server_made(self, payloads: list[bytes]) -> bool:
        """Whether the SFU made this frame (H.264's must be told before depacketizing:
        the trailer follows a STAP-A's last NAL unit)."""
        if payloads and is_server_injected(payloads[-1], self._sif_trailer):
            self.server_injected += 1
            return True
        return False

    def open(self, frame: bytes, arrival: float) -> bytes | None:
        """The frame as the publisher's encoder made it; None when it is to be dropped."""
        result = self._decryptor.decrypt(frame)
        if isinstance(result, Decrypted):
            self.decrypted += 1
            self.key_indexes.add(result.key_index)
            self._failing_since = None
            if result.ratchet_steps:
                logger.info("track %s: following the publisher's key, ratcheted %d time(s)",
                            self._track_sid, result.ratchet_steps)
            return result.data
        if isinstance(result, ServerInjected):
            self.server_injected += 1
            return None
        if isinstance(result, ParameterSetsAlone):
            self.fragments += 1
            return None
        self.failures += 1
        if self._failing_since is None:
            self._failing_since = arrival
            # Its length and first bytes (a clear header, or ciphertext: nothing secret)
            # tell a frame cut short from one the sender made otherwise.
            logger.warning("track %s: a frame did not decrypt (%s; %d bytes, %s..., after "
                           "%d that did); dropped, as are the next ones until one does",
                           self._track_sid, result.reason, len(frame), frame[:12].hex(),
                           self.decrypted)
        elif arrival - self._failing_since >= GIVE_UP and not self.given_up:
            self.given_up = True
            logger.error("track %s: %s: no frame decrypted for %.0f s (%d frames, %d "
                         "decrypted before)", self._track_sid, CANNOT_DECRYPT, GIVE_UP,
                         self.failures, self.decrypted)
            self._cannot_decrypt(CANNOT_DECRYPT)
        return None
