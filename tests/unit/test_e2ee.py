"""End-to-end encrypted frames (media/e2ee.py, media/e2ee_keys.py), held to LiveKit's code.

``e2ee_vectors/vectors.json`` is the output of ``e2ee_vectors/livekit_e2ee.mjs``, which
runs livekit-client's own e2ee code (its published bundles) under Node: key derivation
and ratchet known answers, and frames its FrameCryptor encrypted. Every test here reads
those; one more, when Node and the web client's livekit-client are installed, runs the
script again and requires the same output, so that an SDK upgrade that changes the
format fails here. The AV1 envelope exists in the native SDKs only, and is built here
after their source.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from publisher_hls_agent.media import av1, blank, h264
from publisher_hls_agent.media.bits import leb128
from publisher_hls_agent.media.codecs import VIDEO_CODECS
from publisher_hls_agent.media.e2ee import (
    Decrypted,
    FrameDecryptor,
    ParameterSetsAlone,
    ServerInjected,
    Undecryptable,
    clear_header_length,
    codec_of,
    escape,
    needs_unescaping,
    unescape,
)
from publisher_hls_agent.media.e2ee_keys import (
    DEFAULT_RATCHET_SALT,
    KeyDerivation,
    KeyRingOptions,
    Opened,
    SharedKeyRing,
    Unopened,
    derive,
)

from .h264_samples import packetize

pytestmark = pytest.mark.unit

VECTORS_DIR = Path(__file__).parent / "e2ee_vectors"
VECTORS: dict[str, Any] = json.loads((VECTORS_DIR / "vectors.json").read_text())
FRAMES = {frame["name"]: frame for frame in VECTORS["frames"]}
KAT_AAD, KAT_PLAINTEXT = b"additional data", b"known answer"
SIF_TRAILER = b"3nQ8vTzK1bX0yLrA7cWdE5fGhJ2kMpSuV9wYZaBcDeF"  # base62, like the SFU's


def _filler(length: int, seed: int) -> bytes:
    """The script's deterministic filler (an LCG's high bytes)."""
    out = bytearray()
    state = seed
    for _ in range(length):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        out.append(state >> 24)
    return bytes(out)


def _secret(vector: dict[str, Any]) -> str | bytes:
    return vector["secret"] if vector.get("secret") is not None else bytes.fromhex(
        vector["secret_hex"])


def _ring(vector: dict[str, Any], **options: Any) -> SharedKeyRing:
    kdf = KeyDerivation(vector["kdf"])
    return SharedKeyRing.from_passphrase(
        _secret(vector), KeyRingOptions(key_derivation=kdf, **options), vector["key_index"])


def _encrypted(name: str) -> bytes:
    return bytes.fromhex(FRAMES[name]["encrypted"])


def _expected(name: str) -> bytes:
    """The plaintext, its clear header's start codes 4 bytes long as the JS sender sends
    them (the vectors' payloads hold no start code, so splitting the whole is safe)."""
    frame = FRAMES[name]
    plaintext = bytes.fromhex(frame["plaintext"])
    if frame["codec"] in ("h264", "h265"):
        return h264.to_annexb(h264.split_annexb(plaintext))
    return plaintext


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize("case", VECTORS["kdf"], ids=lambda case: f"{case['kdf']}-{case['salt']}")
def test_derivation_and_ratchet_match_the_sdk(case: dict[str, Any]) -> None:
    kdf = KeyDerivation(case["kdf"])
    salt = case["salt"].encode()
    secret = _secret(case)
    material = secret.encode() if isinstance(secret, str) else secret
    iv = _filler(12, 7)
    for step, (chain_key, kat) in enumerate(zip(case["chain"], case["kat"], strict=True)):
        key = derive(material, salt, case["key_bits"] // 8, kdf)
        assert AESGCM(key).encrypt(iv, KAT_PLAINTEXT, KAT_AAD).hex() == kat, f"key, step {step}"
        material = derive(material, salt, 32, kdf)
        assert material.hex() == chain_key, f"ratchet, step {step}"


@pytest.mark.parametrize("case", VECTORS["kdf"], ids=lambda case: f"{case['kdf']}-{case['salt']}")
def test_the_ring_opens_what_each_ratchet_step_sealed(case: dict[str, Any]) -> None:
    options = KeyRingOptions(ratchet_salt=case["salt"].encode(), key_bits=case["key_bits"],
                             key_derivation=KeyDerivation(case["kdf"]))
    ring = SharedKeyRing.from_passphrase(_secret(case), options)
    for step, kat in enumerate(case["kat"]):
        opened = ring.open(0, _filler(12, 7), bytes.fromhex(kat), KAT_AAD)
        # Each step's key is one ratchet past the last one opened, which the ring kept.
        assert opened == Opened(KAT_PLAINTEXT, 0 if step == 0 else 1)


def test_the_python_sdk_defaults() -> None:
    options = KeyRingOptions()
    assert options.ratchet_salt == b"LKFrameEncryptionKey"
    assert options.key_derivation is KeyDerivation.PBKDF2
    assert (options.ratchet_window_size, options.failure_tolerance) == (16, -1)
    assert (options.key_ring_size, options.key_bits) == (16, 128)


# ---------------------------------------------------------------- frames the SDK encrypted


@pytest.mark.parametrize("name", list(FRAMES))
def test_every_frame_the_sdk_encrypted_decrypts(name: str) -> None:
    vector = FRAMES[name]
    ring = _ring(vector)
    result = FrameDecryptor(ring, vector["codec"]).decrypt(_encrypted(name))
    assert isinstance(result, Decrypted), result
    assert result.data == _expected(name)
    if vector["encrypted"]:
        assert (result.key_index, result.ratchet_steps) == (vector["key_index"],
                                                            vector["ratchets"])


def test_clear_headers_are_left_as_the_sdk_left_them() -> None:
    # VP8: 10 bytes on keyframes, 3 otherwise; audio: the TOC byte; VP9: nothing.
    for name, clear in (("vp8 keyframe", 10), ("vp8 delta", 3), ("opus", 1), ("vp9", 0)):
        encrypted = _encrypted(name)
        assert clear_header_length(FRAMES[name]["codec"], encrypted) == clear
        assert encrypted[:clear] == bytes.fromhex(FRAMES[name]["plaintext"])[:clear]
    # H.264: up to and including the first slice's first two bytes, start codes widened.
    encrypted = _encrypted("h264 two slices")
    h264_clear = clear_header_length("h264", encrypted)
    assert h264_clear is not None
    assert h264.split_annexb(encrypted[:h264_clear])[-1] == bytes([0x65, 0xB8])
    assert len(h264.split_annexb(encrypted)) == 3  # the second slice is in the ciphertext


def test_h264_is_escaped_after_encryption_and_unescaped_before_decryption() -> None:
    encrypted = _encrypted("h264 idr, escaped")
    clear = clear_header_length("h264", encrypted)
    assert clear is not None
    body = encrypted[clear:]
    assert needs_unescaping(body)
    # The script made the ciphertext and the IV hold 00 00 0x runs: the sender escaped
    # them exactly as our escape does, and no start code is left for the depacketizer.
    assert escape(unescape(body)) == body
    assert len(unescape(body)) < len(body)
    assert b"\x00\x00\x01" not in body
    assert body[-2:] == bytes([12, 0])  # IV length, key index: never escaped


@pytest.mark.parametrize("name", ["h264 idr, escaped", "h264 two slices", "h264 delta"])
def test_the_recorders_depacketized_access_unit_is_what_the_sender_authenticated(
    name: str,
) -> None:
    sent = _encrypted(name)
    nals = h264.split_annexb(sent)
    assert h264.to_annexb(nals) == sent  # the split loses nothing of this one
    # libwebrtc's packetizer (mode 1): small NAL units in STAP-A, big ones in FU-A
    received = h264.to_annexb(h264.depacketize(packetize(nals, mtu=120)))
    assert received == sent  # same clear header, so the same AES-GCM additional data
    result = FrameDecryptor(_ring(FRAMES[name]), "video/H264").decrypt(received)
    assert isinstance(result, Decrypted)
    assert result.data == _expected(name)


def _native_sender(access_unit: bytes, passphrase: str) -> bytes:
    """A native SDK's sender: the clear header authenticated as its encoder wrote it,
    3-byte start codes and all (x264 writes them after the parameter sets)."""
    clear = clear_header_length("h264", access_unit)
    assert clear is not None
    key = derive(passphrase.encode(), DEFAULT_RATCHET_SALT, 32, KeyDerivation.PBKDF2)[:16]
    iv = bytes(range(12))
    header = access_unit[:clear]
    sealed = AESGCM(key).encrypt(iv, access_unit[clear:], header)
    return header + escape(sealed + iv + bytes([12, 0]))


def test_a_native_senders_3_byte_start_codes_are_found() -> None:
    slice_data = _filler(300, 7).replace(b"\x00", b"\x01")  # no start code inside
    access_unit = (b"\x00\x00\x00\x01\x67\x42\xc0\x1e" + b"\x00\x00\x00\x01\x68\xce\x3c\x80"
                   + b"\x00\x00\x01\x06\x05\x01\xff" + b"\x00\x00\x01\x65\x88" + slice_data
                   + b"\x00\x00\x01\x65\x88" + slice_data)
    sent = _native_sender(access_unit, "passphrase")
    # What the recorder rebuilds from RTP, every start code 4 bytes long (the packets
    # carry NAL units, not their start codes).
    received = h264.to_annexb(h264.split_annexb(sent))
    assert received != sent
    decryptor = FrameDecryptor(SharedKeyRing.from_passphrase("passphrase"), "video/H264")
    for _ in range(2):  # the second time, the mix that worked is tried first
        result = decryptor.decrypt(received)
        assert isinstance(result, Decrypted) and result.data == access_unit
    wrong = FrameDecryptor(SharedKeyRing.from_passphrase("another"), "video/H264")
    assert isinstance(wrong.decrypt(received), Undecryptable)


# ---------------------------------------------------------------- ratchets and key slots


def test_a_ratcheted_key_is_followed_and_kept() -> None:
    ring = _ring(FRAMES["vp8 delta"])
    decryptor = FrameDecryptor(ring, "vp8")
    first = decryptor.decrypt(_encrypted("vp8 delta, key ratcheted twice"))
    assert isinstance(first, Decrypted) and first.ratchet_steps == 2
    again = FrameDecryptor(ring, "audio/opus").decrypt(_encrypted("opus, key ratcheted twice"))
    assert isinstance(again, Decrypted) and again.ratchet_steps == 0  # the ring moved on
    # As in the SDKs, a ratchet is not undone: frames of the old key no longer decrypt.
    assert isinstance(decryptor.decrypt(_encrypted("vp8 delta")), Undecryptable)


def test_a_ratchet_beyond_the_window_fails_and_changes_nothing() -> None:
    ring = _ring(FRAMES["vp8 delta"], ratchet_window_size=1)
    decryptor = FrameDecryptor(ring, "vp8")
    result = decryptor.decrypt(_encrypted("vp8 delta, key ratcheted twice"))
    assert isinstance(result, Undecryptable)
    assert isinstance(decryptor.decrypt(_encrypted("vp8 delta")), Decrypted)


def test_the_js_sdk_itself_follows_one_ratchet_only() -> None:
    # FrameCryptor.decryptFrame ratchets the unchanged slot on every attempt: whatever
    # its window, a browser follows one step. The ring follows its whole window.
    assert [(row["ratchets_ahead"], row["decrypted"]) for row in VECTORS["js_ratchet_window"]
            ] == [(0, True), (1, True), (2, False), (3, False)]


def test_a_manual_ratchet_matches_the_senders() -> None:
    ring = _ring(FRAMES["vp8 delta"], ratchet_window_size=0)
    ring.ratchet()
    ring.ratchet()
    result = FrameDecryptor(ring, "vp8").decrypt(_encrypted("vp8 delta, key ratcheted twice"))
    assert isinstance(result, Decrypted) and result.ratchet_steps == 0


def test_keys_are_found_by_the_frames_key_index() -> None:
    name = "vp8 keyframe, key index 3"
    ring = _ring(FRAMES["vp8 keyframe"])  # index 0 only
    decryptor = FrameDecryptor(ring, "vp8")
    assert decryptor.decrypt(_encrypted(name)) == Undecryptable(
        "key index 3: no key at the frame's key index")
    ring.set_key(FRAMES[name]["secret"], 3)
    assert isinstance(decryptor.decrypt(_encrypted(name)), Decrypted)
    assert isinstance(decryptor.decrypt(_encrypted("vp8 keyframe")), Decrypted)  # index 0


def test_a_wrong_key_cannot_decrypt() -> None:
    ring = SharedKeyRing.from_passphrase("not the passphrase")
    for name in ("opus", "vp8 keyframe", "vp9", "h264 idr, escaped", "h265 idr"):
        result = FrameDecryptor(ring, FRAMES[name]["codec"]).decrypt(_encrypted(name))
        assert result == Undecryptable(
            "key index 0: authentication failed with the key and its ratchet window")


def test_hkdf_keys_need_the_hkdf_ring() -> None:
    vector = FRAMES["vp8 delta, hkdf"]
    wrong = SharedKeyRing.from_passphrase(_secret(vector), key_index=5)  # PBKDF2
    assert isinstance(FrameDecryptor(wrong, "vp8").decrypt(_encrypted("vp8 delta, hkdf")),
                      Undecryptable)


def test_a_key_failing_beyond_the_tolerance_is_refused_until_set_again() -> None:
    vector = FRAMES["vp8 delta"]
    ring = SharedKeyRing.from_passphrase(
        "wrong", KeyRingOptions(failure_tolerance=2, ratchet_window_size=0))
    decryptor = FrameDecryptor(ring, "vp8")
    reasons = [decryptor.decrypt(_encrypted("vp8 delta")) for _ in range(4)]
    assert [r.reason for r in reasons if isinstance(r, Undecryptable)] == [
        f"key index 0: {Unopened.WRONG_KEY.value}"] * 3 + [
        f"key index 0: {Unopened.KEY_INVALID.value}"]
    ring.set_key(vector["secret"])
    assert isinstance(decryptor.decrypt(_encrypted("vp8 delta")), Decrypted)


# ---------------------------------------------------------------- frames the SFU made


@pytest.mark.parametrize(("codec", "payload"), [
    ("vp8", blank.VP8_BLANK_KEYFRAME),
    ("audio", blank.OPUS_SILENCE),
    ("h264", h264.to_annexb([blank.H264_BLANK_SPS])),
])
def test_server_injected_frames_are_told_apart(codec: str, payload: bytes) -> None:
    ring = _ring(FRAMES["vp8 delta"])
    assert FrameDecryptor(ring, codec, SIF_TRAILER).decrypt(payload + SIF_TRAILER) == (
        ServerInjected())
    # Without the room's trailer, the SFU's fixed blank frames are still known by their
    # bytes (a frame that does not decrypt is looked at); anything else does not decrypt.
    assert FrameDecryptor(ring, codec).decrypt(payload) == ServerInjected()
    assert isinstance(FrameDecryptor(ring, codec).decrypt(b"not one of the SFU's" * 3),
                      Undecryptable)


def test_a_keyframe_cut_to_its_clear_parameter_sets_is_no_failure() -> None:
    """Seen on a busy machine with Chromium's H.264 simulcast: the SFU forwarded a
    keyframe's first packet (SPS and PPS, clear) and not the rest. No picture is lost:
    the track's decryption does not count it as a frame that failed."""
    from publisher_hls_agent.room.decryption import TrackDecryption

    from .h264_samples import PPS, SPS
    ring = _ring(FRAMES["h264 idr, escaped"])
    fragment = h264.to_annexb([SPS, PPS])
    assert FrameDecryptor(ring, "video/H264").decrypt(fragment) == ParameterSetsAlone()
    assert isinstance(FrameDecryptor(ring, "video/H264").decrypt(
        h264.to_annexb([SPS, PPS, b"\x65\x88\x84"])), Undecryptable)  # a clear IDR is not
    assert isinstance(FrameDecryptor(ring, "vp8").decrypt(fragment), Undecryptable)
    track = TrackDecryption(ring, "video/H264", b"", "TR_v", lambda reason: None)
    assert track.open(fragment, 0.0) is None
    assert (track.failures, track.fragments) == (0, 1)


def test_encrypted_frames_pass_the_sif_check() -> None:
    decryptor = FrameDecryptor(_ring(FRAMES["vp8 delta"]), "vp8", SIF_TRAILER)
    assert isinstance(decryptor.decrypt(_encrypted("vp8 delta")), Decrypted)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", ["opus", "vp8 keyframe", "vp9", "h264 idr, escaped",
                                  "h265 idr"])
def test_truncated_and_altered_frames_are_undecryptable(name: str) -> None:
    vector = FRAMES[name]
    decryptor = FrameDecryptor(_ring(vector, ratchet_window_size=2), vector["codec"])
    encrypted = _encrypted(name)
    alone = []
    for length in range(1, len(encrypted)):
        result = decryptor.decrypt(encrypted[:length])
        if isinstance(result, ParameterSetsAlone):  # cut right after its clear SPS/PPS
            alone.append(length)
            continue
        assert isinstance(result, Undecryptable), length
    # An H.264 keyframe cut within its parameter sets is told apart; once a byte of its
    # IDR slice is in, it is a frame that does not decrypt.
    if name == "h264 idr, escaped":
        slice_at = next(i + 3 for i in range(len(encrypted))
                        if encrypted[i:i + 3] == b"\x00\x00\x01" and encrypted[i + 3] & 0x1F == 5)
        assert alone and max(alone) <= slice_at, (alone, slice_at)
    else:
        assert not alone, alone
    for position in range(len(encrypted)):
        altered = bytearray(encrypted)
        altered[position] ^= 0x01
        result = decryptor.decrypt(bytes(altered))
        # (a start code broken before the IDR slice makes its bytes a PPS's: dropped too)
        assert isinstance(result, Undecryptable) or (
            name == "h264 idr, escaped" and isinstance(result, ParameterSetsAlone)), position
    assert isinstance(decryptor.decrypt(encrypted), Decrypted)  # and the ring is intact


@pytest.mark.parametrize("codec", ["audio", "vp8", "vp9", "av1", "h264", "h265"])
def test_garbage_gives_a_reason_not_an_exception(codec: str) -> None:
    decryptor = FrameDecryptor(SharedKeyRing.from_passphrase("p"), codec)
    rng = random.Random(codec)
    samples = [bytes(n) for n in range(1, 40)] + [b"\x00\x00\x01" * n for n in range(1, 12)]
    samples += [rng.randbytes(rng.randrange(1, 400)) for _ in range(300)]
    samples += [sample + bytes([12, 0]) for sample in samples[:60]]
    for sample in samples:
        assert isinstance(decryptor.decrypt(sample), Undecryptable)


def test_an_empty_frame_passes_as_it_came() -> None:
    assert FrameDecryptor(SharedKeyRing(), "audio").decrypt(b"") == Decrypted(b"", None)


def test_unknown_codecs_are_refused_when_the_decryptor_is_made() -> None:
    with pytest.raises(ValueError, match="video/theora"):
        codec_of("video/theora")
    assert [codec_of(n) for n in ("audio/opus", "video/VP8", "h264", "video/H265")] == [
        "audio", "vp8", "h264", "h265"]


# ---------------------------------------------------------------- codec details


def test_h264_clear_header_follows_the_bytes() -> None:
    sps, pps, aud, sei = b"\x67\x42\x00\x1f", b"\x68\xce", b"\x09\xf0", b"\x06\x05\x01\x80"
    idr = b"\x65\x88\x84\x21\xa0"
    unit = h264.to_annexb([aud, sei, sps, pps, idr])
    # AUD and SEI read as H.265 slice types (STSA_N, TSA_R): H.264 is looked for first.
    assert clear_header_length("h264", unit) == unit.index(idr) + 2
    assert clear_header_length("h265", unit) == unit.index(idr) + 2
    assert clear_header_length("h264", b"\x00" + h264.to_annexb([idr])) == 7  # leading zero
    assert clear_header_length("h264", b"\x01" + h264.to_annexb([idr])) is None  # not Annex B
    assert clear_header_length("h264", h264.to_annexb([sps, pps])) is None  # no slice
    hevc_idr = b"\x26\x01\xaf\x00"
    hevc = h264.to_annexb([b"\x40\x01\x0c", b"\x42\x01\x01", b"\x44\x01\xc1", hevc_idr])
    assert clear_header_length("h265", hevc) == hevc.index(hevc_idr) + 2


def test_escaping_round_trips_and_leaves_no_start_code() -> None:
    rng = random.Random(1)
    for _ in range(200):
        data = bytes(rng.choice([0, 0, 0, 1, 2, 3, rng.randrange(256)])
                     for _ in range(rng.randrange(60)))
        escaped = escape(data)
        assert unescape(escaped) == data
        for pattern in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
            assert pattern not in escaped
    assert escape(b"\x00\x00\x03\x00\x00") == b"\x00\x00\x03\x03\x00\x00"
    assert not needs_unescaping(b"\x05\x00\x00\x03")  # at the very end, as the SDKs see it


def _av1_envelope(payload_size: int, keyframe: bool) -> bytes:
    """The native sender's AV1 envelope (native ``MakeAv1EncryptedFrameHeader``)."""
    sequence = b"\x0a\x00" if keyframe else b""
    return sequence + b"\x32" + leb128(1 + payload_size) + b"\x00"


@pytest.mark.parametrize("keyframe", [True, False])
def test_av1_frames_in_the_native_envelope_decrypt_to_the_whole_frame(keyframe: bool) -> None:
    ring = SharedKeyRing.from_passphrase("p")
    key = derive(b"p", b"LKFrameEncryptionKey", 16, KeyDerivation.PBKDF2)
    frame = b"\x12\x00\x32\x05" + bytes(range(5)) * 40  # temporal delimiter, frame OBU
    iv = bytes(range(12))
    header = _av1_envelope(len(frame) + 16 + 12 + 2, keyframe)
    sent = header + AESGCM(key).encrypt(iv, frame, header) + iv + bytes([12, 0])
    # Through RTP: OBUs without their size fields, which the depacketizer puts back.
    elements = [bytes([whole[0] & ~0x02]) + payload for _, whole, payload in av1.obus(sent)]
    rtp = bytes([0x08 if keyframe else 0x00]) + b"".join(leb128(len(e)) + e for e in elements)
    received = av1.depacketize([rtp])
    assert received == sent
    result = FrameDecryptor(ring, "video/AV1").decrypt(received)
    assert result == Decrypted(frame, 0)
    assert isinstance(FrameDecryptor(ring, "av1").decrypt(frame), Undecryptable)


# ---------------------------------------------------------------- secrets


def test_no_secret_shows() -> None:
    passphrase = "hunter2-but-longer"
    options = KeyRingOptions(ratchet_salt=b"private salt")
    ring = SharedKeyRing.from_passphrase(passphrase, options)
    key = derive(passphrase.encode(), b"private salt", 32, KeyDerivation.PBKDF2)
    decryptor = FrameDecryptor(ring, "vp8", SIF_TRAILER)
    shown = [repr(ring), str(ring), repr(options), repr(decryptor), repr(ring._slots),
             repr(ring.open(0, bytes(12), bytes(40), b"")),
             repr(decryptor.decrypt(_encrypted("vp8 delta")))]
    with pytest.raises(IndexError) as error:
        ring.set_key(passphrase, 99)
    shown.append(str(error.value))
    for text in shown:
        for secret in (passphrase, passphrase.encode().hex(), key.hex(), key[:16].hex(),
                       "private salt", SIF_TRAILER.decode()):
            assert secret not in text, text


# ---------------------------------------------------------------- the vectors, again


def test_the_installed_livekit_client_still_makes_these_vectors() -> None:
    node = shutil.which("node")
    dist = Path(__file__).parents[2] / "web/node_modules/livekit-client/dist"
    if node is None:
        pytest.skip("node is not installed: the committed vectors were checked only")
    if not (dist / "livekit-client.e2ee.worker.mjs").exists():
        pytest.skip(f"no livekit-client in {dist} (npm ci in web/): committed vectors only")
    run = subprocess.run([node, str(VECTORS_DIR / "livekit_e2ee.mjs"), str(dist)],
                         capture_output=True, text=True, timeout=120, check=True)
    made = json.loads(run.stdout)
    committed = dict(VECTORS)
    made.pop("livekit_client")
    version = committed.pop("livekit_client")
    assert made == committed, (
        f"livekit-client's e2ee output differs from the vectors made with {version}: "
        "review the change, then regenerate e2ee_vectors/vectors.json with its script")


def test_a_ring_at_every_index_follows_a_publisher_to_a_new_index() -> None:
    vector = FRAMES["vp8 keyframe, key index 3"]
    ring = SharedKeyRing.at_every_index(_secret(vector), KeyRingOptions(
        key_derivation=KeyDerivation(vector["kdf"])))
    assert not ring.has_key(3)
    result = FrameDecryptor(ring, "video/VP8").decrypt(_encrypted("vp8 keyframe, key index 3"))
    assert isinstance(result, Decrypted) and result.key_index == 3
    assert ring.has_key(3)
    other = SharedKeyRing.from_passphrase(_secret(vector), KeyRingOptions(
        key_derivation=KeyDerivation(vector["kdf"])))
    assert isinstance(FrameDecryptor(other, "video/VP8").decrypt(
        _encrypted("vp8 keyframe, key index 3")), Undecryptable)


def test_vp9_spatial_layers_are_decrypted_frame_by_frame() -> None:
    """Each layer frame of a picture is sealed on its own; the recorder's depacketizer
    joins them into a superframe first, which splits back (VideoCodec.layers)."""
    codec = VIDEO_CODECS["video/vp9"]
    assert codec.layers is not None
    split, join = codec.layers
    layer = _encrypted("vp9")
    decryptor = FrameDecryptor(_ring(FRAMES["vp9"]), "video/VP9")
    opened = [decryptor.decrypt(frame) for frame in split(join([layer, layer]))]
    assert all(isinstance(result, Decrypted) and result.data == _expected("vp9")
               for result in opened)
