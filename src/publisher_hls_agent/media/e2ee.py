"""Frames of LiveKit's end-to-end encrypted tracks (shared-key mode), decrypted. Pure.

A sender's encoded-frame transform (livekit-client ``src/e2ee/worker/FrameCryptor.ts``;
the native SDKs' libwebrtc fork, ``api/crypto/frame_crypto_transformer.cc``) rewrites
each frame as::

    [clear header][AES-GCM ciphertext, 16-byte tag][IV, 12 bytes][IV length: 12][key index]

The clear header is the frame's first bytes, left readable for the SFU and the
depacketizer, and authenticated as the AES-GCM additional data. How many it is depends
on the codec (``clear_header_length``). The IV is the sender's SSRC, RTP timestamp and
timestamp minus a frame counter (4 bytes each, big-endian); the SFU rewrites both SSRC
and timestamp, so it is only taken as sent, never checked. For H.264 and H.265
everything after the header is then escaped like a NAL unit's payload (an emulation
prevention byte 03 before any byte 00-03 that follows two zero bytes), so that no start
code appears inside it; ``unescape`` undoes that before the trailer is read.

Frames the SFU makes itself (blank keyframes, silence, on mute) are not encrypted: they
end with the room's random "SIF trailer" (``JoinResponse.sif_trailer``), and are
reported as ``ServerInjected`` for the caller to drop; so is one of its fixed blank
frames (``blank.py``) that does not decrypt, trailer or not.

What ``FrameDecryptor.decrypt`` takes is the frame libwebrtc's receiver hands its
transform, which is also what the media path rebuilds from RTP:

* audio: one packet's Opus payload (the SDKs disable RED on encrypted tracks);
* VP8: the frame without the payload descriptors (``vp8.depacketize``);
* VP9, AV1: one layer frame (with spatial layers, each is encrypted on its own);
* H.264, H.265: the access unit in Annex B, every NAL unit after a 4-byte start code,
  as ``h264.to_annexb(h264.depacketize(payloads))`` makes it. libwebrtc's depacketizer
  writes the same bytes, and the JS sender authenticates its header with its start
  codes made 4 bytes long for that reason: the additional data matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from ..errors import BitsExhausted
from . import blank
from .bits import read_leb128
from .e2ee_keys import Opened, SharedKeyRing, Unopened
from .h264 import (
    split_annexb,
    sps_size,
    unescape,  # (what the sender escaped, as in any NAL unit)
)

IV_LENGTH = 12
GCM_TAG_LENGTH = 16
TRAILER_LENGTH = 2  # IV length, key index

AUDIO, VP8, VP9, AV1, H264, H265 = "audio", "vp8", "vp9", "av1", "h264", "h265"
CODECS = frozenset({AUDIO, VP8, VP9, AV1, H264, H265})

# VP8 keeps its frame tag (and on keyframes the start code and size) readable, for the
# SFU (RFC 6386, 9.1); audio its Opus TOC byte. JS constants.ts UNENCRYPTED_BYTES.
VP8_KEYFRAME_CLEAR, VP8_DELTA_CLEAR, AUDIO_CLEAR = 10, 3, 1

_START_CODE = b"\x00\x00\x01"
_FOUR_BYTE_START = b"\x00\x00\x00\x01"
MAX_HEADER_NALS = 6  # start-code mixes tried: 2^6 at most, for keyframes' headers only
_H264_SLICES = frozenset({1, 5})  # non-IDR and IDR slices
_H265_SLICES = frozenset({*range(0, 10), *range(16, 22)})  # TRAIL_N .. RASL_R, BLA .. CRA

# The native sender's AV1 envelope (JS cannot encrypt AV1): an empty sequence header OBU
# on keyframes, then one frame OBU whose payload is a routing byte and the ciphertext.
_AV1_SEQUENCE_HEADER, _AV1_FRAME, _AV1_ROUTING = 0x0A, 0x32, 0x00


@dataclass(frozen=True, slots=True)
class Decrypted:
    data: bytes = field(repr=False)
    key_index: int | None  # None: an empty frame, passed as it came (the SDKs do)
    ratchet_steps: int = 0  # how far the key had to be ratcheted (now the ring's key)


@dataclass(frozen=True, slots=True)
class ServerInjected:
    """A frame the SFU made, not the publisher: never encrypted, to be dropped."""


@dataclass(frozen=True, slots=True)
class ParameterSetsAlone:
    """An H.264 frame of nothing but clear parameter sets (SPS, PPS, SEI, AUD) and no
    trailer: the first packet of a keyframe whose other packets the SFU did not forward
    (seen at a simulcast layer switch on a busy machine). No picture: to be dropped,
    and nothing after it depends on it (every IDR brings or gets its parameter sets)."""


@dataclass(frozen=True, slots=True)
class Undecryptable:
    reason: str  # short, for logs; never a key


DecryptResult: TypeAlias = Decrypted | ServerInjected | ParameterSetsAlone | Undecryptable
_H264_NOT_PICTURES = frozenset({6, 7, 8, 9})  # SEI, SPS, PPS, access unit delimiter


def codec_of(name: str) -> str:
    """The codec a decryptor is made for, from a name or a MIME type: "audio/opus" (any
    audio: one clear byte), "video/VP8", "h264"..."""
    kind, _, subtype = name.lower().rpartition("/")
    if kind == "audio" or subtype in ("opus", "red", "pcmu", "pcma", AUDIO):
        return AUDIO
    if subtype in CODECS:
        return subtype
    raise ValueError(f"no end-to-end decryption for codec {name!r}")


def _parameter_sets_alone(frame: bytes) -> bool:
    """Whether an H.264 frame is, in the clear, a readable SPS, a PPS (and perhaps SEI
    and AUD) and nothing else."""
    if not frame.startswith(_START_CODE) and not frame.startswith(_FOUR_BYTE_START):
        return False
    nals = split_annexb(frame)
    types = [nal[0] & 0x9F for nal in nals]  # the forbidden bit kept: it must be 0
    readable_sps = any(t == 7 and sps_size(nal) is not None
                       for t, nal in zip(types, nals, strict=True))
    return all(t in _H264_NOT_PICTURES for t in types) and 8 in types and readable_sps


def is_server_injected(data: bytes, sif_trailer: bytes) -> bool:
    """Whether a frame (or an RTP payload) ends with the room's SIF trailer."""
    return bool(sif_trailer) and data.endswith(sif_trailer)


def clear_header_length(codec: str, frame: bytes) -> int | None:
    """How many leading bytes of ``frame`` its sender left unencrypted, computed on the
    received frame as the SDKs' receivers do; None when it is not a frame of the codec.
    (AV1 has its own envelope instead: ``_av1_envelope_length``.)"""
    if codec == AUDIO:
        return AUDIO_CLEAR
    if codec == VP8:
        if not frame:
            return None
        return VP8_DELTA_CLEAR if frame[0] & 0x01 else VP8_KEYFRAME_CLEAR  # P bit
    if codec in (H264, H265):
        return _nal_clear_length(frame)
    return 0  # VP9 (and AV1's payload): all encrypted, as both SDKs do


def _nal_clear_length(frame: bytes) -> int | None:
    """Up to and including the first two bytes of the first slice NAL unit.

    As JS ``processNALUsForEncryption``: the bytes outrank the track's codec, H.264
    first (an H.264 AUD or SEI reads as an H.265 slice type, never the reverse), so the
    result does not depend on which of the two the track is. The escaped ciphertext
    holds no start code, so only the clear header's NAL units are ever found.
    """
    first = frame.find(_START_CODE)
    if first < 0 or frame[:first].strip(b"\x00"):
        return None  # not Annex B (JS: "byte stream contains leading data")
    starts = []
    position = first
    while position >= 0:
        start = position + len(_START_CODE)
        if start < len(frame):
            if frame[start] & 0x1F in _H264_SLICES:
                return start + 2
            starts.append(start)
        position = frame.find(_START_CODE, start)
    for start in starts:
        if frame[start] >> 1 & 0x3F in _H265_SLICES:
            return start + 2
    return None


def _av1_envelope_length(frame: bytes) -> int | None:
    """The native AV1 envelope's length (native ``ParseAv1EncryptedFrameHeader``)."""
    try:
        position = 0
        if frame[:1] == bytes((_AV1_SEQUENCE_HEADER,)):
            size, position = read_leb128(frame, 1)
            if size:
                return None
        if frame[position : position + 1] != bytes((_AV1_FRAME,)):
            return None
        size, position = read_leb128(frame, position + 1)
    except BitsExhausted:
        return None
    if size < 1 or size != len(frame) - position or frame[position] != _AV1_ROUTING:
        return None
    return position + 1


def needs_unescaping(data: bytes) -> bool:
    """JS ``needsRbspUnescaping``/native ``NeedsRbspUnescaping``: an 00 00 03 starting
    before the last three bytes (so one at the very end is left, as they leave it)."""
    found = data.find(b"\x00\x00\x03")
    return 0 <= found < len(data) - 3


def escape(data: bytes) -> bytes:
    """The sender's side (JS ``writeRbsp``; ``h264.unescape`` undoes it), for tests and
    tools."""
    out = bytearray()
    zeros = 0
    for byte in data:
        if byte <= 3 and zeros >= 2:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class FrameDecryptor:
    """Decrypts the frames of one track, with the room's key ring (shared by the
    room's tracks, as the SDKs share one key handler in shared-key mode)."""

    def __init__(self, keys: SharedKeyRing, codec: str, sif_trailer: bytes = b"") -> None:
        self.keys = keys
        self.codec = codec_of(codec)
        self._sif_trailer = bytes(sif_trailer)
        self._start_code_mask = 0  # the 3-byte start codes of the last header that needed some

    def decrypt(self, frame: bytes) -> DecryptResult:
        """The frame as its publisher's encoder made it; never raises for bad input."""
        if not frame:
            return Decrypted(b"", None)  # the SDKs pass empty (DTX) frames through
        if is_server_injected(frame, self._sif_trailer):
            return ServerInjected()
        if self.codec == AV1:
            clear = _av1_envelope_length(frame)
        else:
            clear = clear_header_length(self.codec, frame)
        nal_codec = self.codec in (H264, H265)
        result = (self._open(frame, clear, escaped=nal_codec) if clear is not None
                  else Undecryptable(f"not a {self.codec} frame the SDKs encrypt"))
        if nal_codec and not isinstance(result, Decrypted):
            result = self._as_vp8(frame) or result
        if not isinstance(result, Decrypted) and self._is_blank(frame):
            return ServerInjected()
        if not isinstance(result, Decrypted) and self.codec == H264 and (
                _parameter_sets_alone(frame)):
            return ParameterSetsAlone()
        return result

    def _is_blank(self, frame: bytes) -> bool:
        """One of the SFU's fixed blank frames, looked for only once a frame failed."""
        if self.codec == AUDIO:
            return blank.is_blank_audio(frame)
        if self.codec == VP8:
            return blank.is_blank_vp8_keyframe(frame)
        if self.codec == H264:
            return blank.is_blank_keyframe(split_annexb(frame))
        return False

    def _open(self, frame: bytes, clear: int, *, escaped: bool,
              ratchet: bool = True) -> DecryptResult:
        if clear > len(frame):
            return Undecryptable("frame shorter than its clear header")
        header, body = frame[:clear], frame[clear:]
        if escaped and needs_unescaping(body):
            body = unescape(body)
        if len(body) < GCM_TAG_LENGTH + IV_LENGTH + TRAILER_LENGTH:
            return Undecryptable("frame too short for an encryption trailer")
        if body[-2] != IV_LENGTH:
            return Undecryptable(f"trailer gives an IV of {body[-2]} bytes, not {IV_LENGTH}")
        key_index = body[-1]
        iv = body[-TRAILER_LENGTH - IV_LENGTH : -TRAILER_LENGTH]
        sealed = body[: -TRAILER_LENGTH - IV_LENGTH]
        opened = self.keys.open(key_index, iv, sealed, header, ratchet=ratchet)
        if not isinstance(opened, Opened) and escaped:
            header, opened = self._other_start_codes(header, key_index, iv, sealed, opened)
        if not isinstance(opened, Opened):
            return Undecryptable(f"key index {key_index}: {opened.value}")
        # The AV1 envelope was made for the encryption; the others' header is the frame's.
        data = opened.plaintext if self.codec == AV1 else header + opened.plaintext
        return Decrypted(data, key_index, opened.ratchet_steps)

    def _as_vp8(self, frame: bytes) -> Decrypted | None:
        """An H.264/H.265 frame the JS sender found no slice in (its NAL parse threw, or
        saw no codec) is encrypted as it does VP8: 10 clear bytes on a keyframe, 3
        otherwise, nothing escaped (``FrameCryptor.getUnencryptedBytes``' fallback).
        The frame type is not known here, so both are tried."""
        for clear in (VP8_DELTA_CLEAR, VP8_KEYFRAME_CLEAR):
            result = self._open(frame, clear, escaped=False, ratchet=False)
            if isinstance(result, Decrypted):
                return result
        return None

    def _other_start_codes(self, header: bytes, key_index: int, iv: bytes, sealed: bytes,
                           failed: Unopened) -> tuple[bytes, Opened | Unopened]:
        """The header authenticated with the start codes its sender wrote.

        The additional data is the clear header as the sender's encoder wrote it, start
        codes included; the receiver rebuilds every one 4 bytes long. The JS sender
        widens its own to 4 bytes for that reason; a native sender passes its
        encoder's on (x264 writes 3-byte ones after the parameter sets), and no SDK
        receiver can then decrypt its keyframes. So, where the 4-byte header fails,
        each mix of 3- and 4-byte start codes is tried (with the key as it stands, the
        ratchet window being for the 4-byte attempt), the last that worked first."""
        nals = header.split(_FOUR_BYTE_START)[1:]
        if not 2 <= len(nals) <= MAX_HEADER_NALS or header[:4] != _FOUR_BYTE_START:
            return header, failed
        masks = range(1, 1 << len(nals))  # bit i set: NAL unit i had a 3-byte start code
        for mask in sorted(masks, key=lambda m: m != self._start_code_mask):
            variant = b"".join((_START_CODE if mask >> i & 1 else _FOUR_BYTE_START) + nal
                               for i, nal in enumerate(nals))
            opened = self.keys.open(key_index, iv, sealed, variant, ratchet=False)
            if isinstance(opened, Opened):
                self._start_code_mask = mask
                return variant, opened
        return header, failed

    def __repr__(self) -> str:
        return f"FrameDecryptor({self.codec}, {self.keys!r})"
