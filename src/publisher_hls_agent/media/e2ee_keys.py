"""Keys of LiveKit's end-to-end encryption in shared-key mode: derived from the room's
passphrase, ratcheted, kept in a ring of slots that each frame's trailer indexes. Pure.

Byte for byte what the SDKs do (livekit-client ``src/e2ee/utils.ts``: ``deriveKeys``,
``ratchet``; ``worker/ParticipantKeyHandler.ts``; the native SDKs' libwebrtc fork,
``api/crypto/frame_crypto_transformer.{h,cc}``: ``ParticipantKeyHandler``):

* a slot holds *material*: the passphrase's bytes (a string as UTF-8), or after a
  ratchet the 32 bytes that ratchet derived;
* its AES-GCM key is ``KDF(material, salt)`` cut to 16 bytes (32 for a web-only 256-bit
  key), the salt being the ratchet salt, ``LKFrameEncryptionKey`` unless configured;
* ratcheting replaces the material by ``KDF(material, salt)`` cut to 32 bytes;
* KDF is PBKDF2-HMAC-SHA256 with 100000 iterations (the JS SDK for a string key, the
  native SDKs by default) or HKDF-SHA256 with 128 zero bytes as info (the JS SDK for an
  ArrayBuffer key, the native SDKs when asked for it).

Both KDFs make their first 32 bytes whatever the length asked for, so one derivation
of 32 bytes gives both the next material and the key (its first 16 bytes): a ratchet
step costs one PBKDF2 run, not the SDKs' two.

Secrets (passphrases, material, keys) stay inside: no repr, str or error shows them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

DEFAULT_RATCHET_SALT = b"LKFrameEncryptionKey"
PBKDF2_ITERATIONS = 100_000
HKDF_INFO = bytes(128)  # JS: new ArrayBuffer(128); native: std::vector<uint8_t>(128, 0)
RATCHET_BYTES = 32  # JS deriveBits(..., 256); native DoKeyDerivation(..., 256)
# The SDKs' defaults (Python/Rust: 16 and -1; JS's shared-key provider forces 0 and -1,
# so a browser never follows a ratchet on its own). A recorder should rather follow.
DEFAULT_RATCHET_WINDOW_SIZE = 16
DEFAULT_KEY_RING_SIZE = 16
MAX_KEY_RING_SIZE = 256


class KeyDerivation(enum.Enum):
    PBKDF2 = "pbkdf2"
    HKDF = "hkdf"


def derive(material: bytes, salt: bytes, length: int, kdf: KeyDerivation) -> bytes:
    """``length`` bytes from ``material``, as the SDKs' key derivation makes them."""
    if kdf is KeyDerivation.PBKDF2:
        return PBKDF2HMAC(hashes.SHA256(), length, salt, PBKDF2_ITERATIONS).derive(material)
    return HKDF(hashes.SHA256(), length, salt, HKDF_INFO).derive(material)


@dataclass(frozen=True)
class KeyRingOptions:
    """The SDKs' ``KeyProviderOptions``, as far as a receiver uses them."""

    ratchet_salt: bytes = field(default=DEFAULT_RATCHET_SALT, repr=False)
    # How many ratchet steps past its slot's key a frame's key may be. 0: never ratchet.
    ratchet_window_size: int = DEFAULT_RATCHET_WINDOW_SIZE
    # Failures beyond this many in a row mark a slot's key invalid: its frames are then
    # refused without trying, until the slot gets a key again. -1: never.
    failure_tolerance: int = -1
    key_ring_size: int = DEFAULT_KEY_RING_SIZE
    key_derivation: KeyDerivation = KeyDerivation.PBKDF2
    key_bits: int = 128  # 256 exists in the JS SDK only

    def __post_init__(self) -> None:
        if self.key_bits not in (128, 256):
            raise ValueError(f"key_bits must be 128 or 256, not {self.key_bits}")
        if not 1 <= self.key_ring_size <= MAX_KEY_RING_SIZE:
            raise ValueError(f"key_ring_size must be 1 to {MAX_KEY_RING_SIZE}")
        if self.ratchet_window_size < 0:
            raise ValueError("ratchet_window_size must not be negative")


class _KeySet:
    """One material's AES-GCM key, and the material its ratchet gives."""

    __slots__ = ("_aead", "next_material")

    def __init__(self, material: bytes, options: KeyRingOptions) -> None:
        derived = derive(material, options.ratchet_salt, RATCHET_BYTES, options.key_derivation)
        self.next_material = derived
        self._aead = AESGCM(derived[: options.key_bits // 8])

    def open(self, nonce: bytes, sealed: bytes, aad: bytes) -> bytes | None:
        try:
            return self._aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            return None

    def __repr__(self) -> str:
        return "_KeySet(<hidden>)"


class _Slot:
    """A key index's key, and the keys its ratchets give, derived as they are first
    needed and kept: frames that no key opens then cost AES-GCM tag checks only."""

    __slots__ = ("_options", "ahead", "failures", "key")

    def __init__(self, material: bytes, options: KeyRingOptions) -> None:
        self._options = options
        self.key = _KeySet(material, options)
        self.ahead: list[_KeySet] = []  # ahead[n - 1]: the key n ratchets on
        self.failures = 0

    def ratcheted(self, steps: int) -> _KeySet:
        while len(self.ahead) < steps:
            last = self.ahead[-1] if self.ahead else self.key
            self.ahead.append(_KeySet(last.next_material, self._options))
        return self.ahead[steps - 1]

    def advance(self, steps: int) -> None:
        self.key = self.ratcheted(steps)
        del self.ahead[:steps]

    def __repr__(self) -> str:
        return "_Slot(<hidden>)"


@dataclass(frozen=True, slots=True)
class Opened:
    plaintext: bytes = field(repr=False)
    ratchet_steps: int  # 0: the slot's key; n: n ratchets on, now the slot's key


class Unopened(enum.Enum):
    """Why the ring opened nothing (the values are for logs: they name no secret)."""

    NO_KEY = "no key at the frame's key index"
    KEY_INVALID = "the key at the frame's key index failed too often"
    WRONG_KEY = "authentication failed with the key and its ratchet window"


def _as_material(secret: str | bytes) -> bytes:
    # A JS string key goes through TextEncoder: UTF-8.
    return secret.encode() if isinstance(secret, str) else bytes(secret)


class SharedKeyRing:
    """The keys of a room in shared-key mode, one per key index (0 unless the app
    rotates keys by index). Not thread-safe; building a slot's key and each ratchet
    step runs the KDF once (PBKDF2: about 10 ms), so set keys off the event loop."""

    def __init__(self, options: KeyRingOptions | None = None) -> None:
        self.options = options or KeyRingOptions()
        self._slots: list[_Slot | None] = [None] * self.options.key_ring_size
        self._every_index: bytes | None = None  # material for a slot first named by a frame

    @classmethod
    def from_passphrase(
        cls, passphrase: str | bytes, options: KeyRingOptions | None = None, key_index: int = 0
    ) -> SharedKeyRing:
        ring = cls(options)
        ring.set_key(passphrase, key_index)
        return ring

    @classmethod
    def at_every_index(cls, passphrase: str | bytes,
                       options: KeyRingOptions | None = None) -> SharedKeyRing:
        """The passphrase's key at index 0, and at any other index the first frame that
        names it finds empty: a publisher that moves to a new key index, set with the
        same passphrase (and maybe ratcheted there), is followed. (A receiver knows one
        passphrase; a new one, on any index, is a key it does not have.)"""
        ring = cls.from_passphrase(passphrase, options)
        ring._every_index = _as_material(passphrase)
        return ring

    def set_key(self, secret: str | bytes, key_index: int = 0) -> None:
        """Put the key of a passphrase (or of raw key bytes) at ``key_index``, as the
        SDKs' ``setKey``/``set_shared_key``: it replaces the slot's key and its ratchets."""
        self._check_index(key_index)
        self._slots[key_index] = _Slot(_as_material(secret), self.options)

    def ratchet(self, key_index: int = 0) -> None:
        """Ratchet a slot once, as the SDKs' ``ratchetKey``/``ratchet_shared_key``."""
        self._check_index(key_index)
        slot = self._slots[key_index]
        if slot is None:
            raise LookupError(f"no key at index {key_index} to ratchet")
        slot.advance(1)
        slot.failures = 0

    def has_key(self, key_index: int) -> bool:
        return 0 <= key_index < len(self._slots) and self._slots[key_index] is not None

    def open(self, key_index: int, nonce: bytes, sealed: bytes, aad: bytes, *,
             ratchet: bool = True) -> Opened | Unopened:
        """Decrypt and authenticate ``sealed`` (ciphertext and tag) with the key at
        ``key_index``, or failing that (and ``ratchet``) with each of its next
        ``ratchet_window_size`` ratchets, the first that works becoming the slot's key
        (the SDKs keep a ratcheted key only once it has decrypted a frame). Without
        ``ratchet``, a failure is not counted against the slot either."""
        slot = self._slots[key_index] if 0 <= key_index < len(self._slots) else None
        if slot is None and self._every_index is not None and 0 <= key_index < len(self._slots):
            slot = self._slots[key_index] = _Slot(self._every_index, self.options)
        if slot is None:
            return Unopened.NO_KEY
        tolerance = self.options.failure_tolerance
        if 0 <= tolerance < slot.failures:
            return Unopened.KEY_INVALID
        plaintext = slot.key.open(nonce, sealed, aad)
        if plaintext is not None:
            slot.failures = 0
            return Opened(plaintext, 0)
        if not ratchet:
            return Unopened.WRONG_KEY
        for steps in range(1, self.options.ratchet_window_size + 1):
            plaintext = slot.ratcheted(steps).open(nonce, sealed, aad)
            if plaintext is not None:
                slot.advance(steps)
                slot.failures = 0
                return Opened(plaintext, steps)
        if tolerance >= 0:
            slot.failures += 1
        return Unopened.WRONG_KEY

    def _check_index(self, key_index: int) -> None:
        if not 0 <= key_index < len(self._slots):
            raise IndexError(f"key index {key_index} outside the ring of {len(self._slots)}")

    def __repr__(self) -> str:
        keys = [index for index, slot in enumerate(self._slots) if slot is not None]
        return (
            f"SharedKeyRing(keys at {keys}, {self.options.key_derivation.value}, "
            f"ratchet window {self.options.ratchet_window_size})"
        )
