"""Configuration: every environment variable, parsed once into a frozen object.

``Config.from_mapping(os.environ)`` in production, a dict in tests. A missing or
invalid value raises ``ConfigError`` naming the variable and what it accepts; the value
itself is never echoed for secrets. Secrets are left out of ``repr``.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .errors import ConfigError
from .media.codecs import DEFAULT_X264_PRESET, X264_PRESETS

T = TypeVar("T")

# A segment shorter than a frame or longer than an hour is a typo, not a choice.
MIN_SEGMENT, MAX_SEGMENT = 0.1, 3600.0
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_CANNED_ACLS = {
    "private", "public-read", "public-read-write", "authenticated-read",
    "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control",
}


# hls.js for the preview page, the version web/package-lock.json pins, from the npm
# registry's CDN mirror; the page checks it against this hash (tests/unit/test_preview.py
# holds it to the npm package's own file).
HLS_JS_CDN = "https://cdn.jsdelivr.net/npm/hls.js@1.7.4/dist/hls.min.js"
HLS_JS_CDN_INTEGRITY = "sha384-p9vgU/7IYJWd3I4STrtqxqR/2cAQlhIX7D/HrTnIMEjjcUox165b7se7sxmm3zDg"


@dataclass(frozen=True)
class S3Config:
    endpoint: str  # scheme://host[:port], scheme from S3_USE_SSL unless given
    bucket: str
    region: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str | None = field(repr=False)
    prefix: str
    use_ssl: bool
    force_path_style: bool
    object_acl: str | None
    realtime_upload: bool


@dataclass(frozen=True)
class WorkerConfig:
    """How the agent worker runs: its capacity, its processes, its HTTP server."""

    max_recordings: int  # reported to the server as full at this many active recordings
    load_threshold: float  # the share of the cores in use past which no job is taken
    processes: int  # recording processes the recordings are spread over
    shutdown_timeout: float  # seconds to finalize every recording on SIGTERM/SIGINT
    http_host: str
    http_port: int  # 0: no HTTP server
    preview_player_url: str  # where the preview page loads hls.js from


@dataclass(frozen=True)
class ThumbnailConfig:
    """THUMBNAILS_ENABLED and its THUMBNAIL_* values (``recorder/thumbnails.py``)."""

    interval: float  # seconds of media between thumbnails
    width: int = 320  # 0: from the height, keeping the aspect ratio
    height: int = 0  # 0: from the width; both 0: the picture's own size
    image_format: str = "jpg"  # "jpg", "png" or "webp"


@dataclass(frozen=True)
class E2EEConfig:
    """E2EE_*: the room's shared key, as its publishers' SDKs take it (media/e2ee_keys.py)."""

    passphrase: str = field(repr=False)
    ratchet_salt: str = "LKFrameEncryptionKey"
    key_derivation: str = "pbkdf2"  # or "hkdf": the native SDKs' option


@dataclass(frozen=True)
class Config:
    livekit_url: str
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    agent_name: str
    output_dir: Path
    auto_activate: bool
    segment_duration: float
    max_segments: int
    keep_opus: bool
    segment_format: str  # "ts" or "fmp4", resolved from HLS_SEGMENT_FORMAT
    transcode_preset: str  # x264's, for the video that cannot pass through (VP8)
    # Where LiveKit-signed events of each recording go; out of the repr (logged at start):
    # a receiver's URL may carry its own token.
    webhook_urls: tuple[str, ...] = field(repr=False)
    thumbnails: ThumbnailConfig | None  # None: THUMBNAILS_ENABLED is false
    e2ee: E2EEConfig | None  # None: no E2EE_PASSPHRASE (encrypted tracks are not recorded)
    s3: S3Config | None
    worker: WorkerConfig
    log_format: str  # "text" or "json"

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Config:
        reader = _Reader(env)
        return cls(
            livekit_url=reader.get("LIVEKIT_URL", "ws://localhost:7880", _livekit_url),
            api_key=reader.required_secret("LIVEKIT_API_KEY"),
            api_secret=reader.required_secret("LIVEKIT_API_SECRET"),
            agent_name=reader.get("AGENT_NAME", "publisher-hls-recorder", _non_empty),
            output_dir=Path(reader.get("OUTPUT_DIR", "publisher-hls-output", _non_empty)),
            auto_activate=reader.get("AUTO_ACTIVATE_RECORDING", "false", _boolean),
            segment_duration=reader.get("HLS_SEGMENT_DURATION", "2", _segment_seconds),
            max_segments=reader.get("HLS_MAX_SEGMENTS", "0", _non_negative_int),
            keep_opus=(keep_opus := reader.get("KEEP_OPUS", "false", _boolean)),
            segment_format=_segment_format(reader.get("HLS_SEGMENT_FORMAT", "auto", _format),
                                           keep_opus),
            transcode_preset=reader.get("TRANSCODE_PRESET", DEFAULT_X264_PRESET,
                                        _x264_preset),
            webhook_urls=reader.get("WEBHOOK_URLS", "", _webhook_urls),
            thumbnails=_thumbnail_config(reader),
            e2ee=_e2ee_config(reader),
            s3=_s3_config(reader),
            worker=WorkerConfig(
                max_recordings=reader.get("MAX_RECORDINGS", "16", _positive_int),
                load_threshold=reader.get("LOAD_THRESHOLD", "0.75", _share),
                processes=reader.get("RECORDING_PROCESSES", str(_default_processes()),
                                     _positive_int),
                shutdown_timeout=reader.get("SHUTDOWN_TIMEOUT", "60", _positive_seconds),
                http_host=reader.get("HTTP_HOST", "0.0.0.0", _non_empty),
                http_port=reader.get("HTTP_PORT", "8080", _port),
                preview_player_url=reader.get("PREVIEW_PLAYER_URL", HLS_JS_CDN, _http_url),
            ),
            log_format=reader.get("LOG_FORMAT", "text", _log_format),
        )


def _default_processes() -> int:
    """One recording process per core this process may run on: one Python process is
    bound to one core by the GIL."""
    return max(1, len(os.sched_getaffinity(0)))


def _share(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number above 0 and at most 1") from None
    if not 0 < value <= 1:
        raise ValueError("must be a number above 0 and at most 1")
    return value


def _x264_preset(raw: str) -> str:
    if raw not in X264_PRESETS:
        raise ValueError(f"must be one of {', '.join(X264_PRESETS)}")
    return raw


def _format(raw: str) -> str:
    if raw.lower() not in ("auto", "ts", "fmp4"):
        raise ValueError("must be auto, ts or fmp4")
    return raw.lower()


def _segment_format(chosen: str, keep_opus: bool) -> str:
    """auto: MPEG-TS for AAC (plays everywhere), fMP4 for Opus (MPEG-TS Opus plays only
    in FFmpeg). The other two pairings are not written yet."""
    natural = "fmp4" if keep_opus else "ts"
    if chosen not in ("auto", natural):
        audio = "Opus (KEEP_OPUS=true)" if keep_opus else "AAC (KEEP_OPUS=false)"
        raise ConfigError("HLS_SEGMENT_FORMAT", f"{chosen} segments with {audio} are not "
                          f"supported yet; use auto or {natural}")
    return natural


def _s3_config(reader: _Reader) -> S3Config | None:
    # Every value is checked whether upload is on or not: a wrong one is a mistake
    # either way, and one that would surface only the day S3_BUCKET is set.
    bucket = reader.optional("S3_BUCKET")
    use_ssl = reader.get("S3_USE_SSL", "false", _boolean)
    endpoint = reader.get_optional("S3_ENDPOINT", lambda raw: _s3_endpoint(raw, use_ssl))
    region = reader.get("S3_REGION", "us-east-1", _non_empty)
    prefix = reader.get("S3_PREFIX", "", _s3_prefix)
    force_path_style = reader.get("S3_FORCE_PATH_STYLE", "true", _boolean)
    object_acl = reader.get_optional("S3_OBJECT_ACL", _canned_acl)
    realtime_upload = reader.get("S3_REALTIME_UPLOAD", "false", _boolean)
    if bucket is None:
        return None
    if endpoint is None:
        raise ConfigError("S3_ENDPOINT", "required (the S3 endpoint, host[:port] or "
                          "http(s)://host[:port])")
    return S3Config(
        endpoint=endpoint,
        bucket=bucket,
        region=region,
        access_key=reader.required_secret("S3_ACCESS_KEY"),
        secret_key=reader.required_secret("S3_SECRET_KEY"),
        session_token=reader.optional_secret("S3_SESSION_TOKEN"),
        prefix=prefix,
        use_ssl=use_ssl,
        force_path_style=force_path_style,
        object_acl=object_acl,
        realtime_upload=realtime_upload,
    )


class _Reader:
    """Reads variables, turning parse failures into ``ConfigError`` for that variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        if _CONTROL.search(value):  # a CR/LF would forge log lines, headers, S3 keys
            raise ConfigError(name, f"must not contain control characters (got {value!r})")
        return value or None

    def optional_secret(self, name: str) -> str | None:
        # Whitespace around a secret is never part of it (a key pasted with its newline
        # would fail every signature); its value is never shown in a message.
        value = self._env.get(name, "").strip()
        if _CONTROL.search(value):
            raise ConfigError(name, "must not contain control characters")
        return value or None

    def exact_secret(self, name: str) -> str | None:
        """A secret taken byte for byte, spaces included (a passphrase that publishers
        type into an SDK must be the same string here)."""
        value = self._env.get(name, "")
        if _CONTROL.search(value):
            raise ConfigError(name, "must not contain control characters")
        return value or None

    def required_secret(self, name: str) -> str:
        value = self.optional_secret(name)
        if value is None:
            raise ConfigError(name, "required")
        return value

    def get(self, name: str, default: str, parse: Callable[[str], T]) -> T:
        raw = self.optional(name) or default
        try:
            return parse(raw)
        except ValueError as exc:
            raise ConfigError(name, f"{exc} (got {_without_userinfo(raw)!r})") from None

    def get_optional(self, name: str, parse: Callable[[str], T]) -> T | None:
        raw = self.optional(name)
        return None if raw is None else self.get(name, raw, parse)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _without_userinfo(raw: str) -> str:
    """A value as it may be shown: a URL's user:password@ replaced (it is a secret)."""
    scheme, sep, rest = raw.partition("://")
    authority, slash, path = rest.partition("/")
    if sep and "@" in authority:
        return f"{scheme}://***@{authority.rsplit('@', 1)[1]}{slash}{path}"
    return raw


def _split_url(raw: str) -> urllib.parse.SplitResult:
    try:
        parts = urllib.parse.urlsplit(raw)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError("is not a URL") from None
    return parts


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("must be one of true/false/1/0/yes/no")


def _positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a positive number of seconds") from None
    if not (0 < value < float("inf")):
        raise ValueError("must be a positive number of seconds")
    return value


def _segment_seconds(raw: str) -> float:
    value = _positive_seconds(raw)
    if not MIN_SEGMENT <= value <= MAX_SEGMENT:
        raise ValueError(f"must be {MIN_SEGMENT:g} to {MAX_SEGMENT:g} seconds")
    return value


def _whole_number(raw: str, low: int, high: int, rule: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(rule) from None
    if not low <= value <= high:
        raise ValueError(rule)
    return value


def _non_negative_int(raw: str) -> int:
    return _whole_number(raw, 0, sys.maxsize, "must be a whole number, 0 or more")


def _positive_int(raw: str) -> int:
    return _whole_number(raw, 1, sys.maxsize, "must be a whole number, 1 or more")


def _port(raw: str) -> int:
    return _whole_number(raw, 0, 65535, "must be a TCP port, 0 (no HTTP server) to 65535")


def _log_format(raw: str) -> str:
    if raw.lower() not in ("text", "json"):
        raise ValueError("must be text or json")
    return raw.lower()


def _non_empty(raw: str) -> str:
    if not raw:
        raise ValueError("must not be empty")
    return raw


def _http_url(raw: str) -> str:
    parts = _split_url(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s):// URL")
    return raw


def _thumbnail_config(reader: _Reader) -> ThumbnailConfig | None:
    # Every value is checked whether thumbnails are on or not (as S3_* are).
    enabled = reader.get("THUMBNAILS_ENABLED", "false", _boolean)
    thumbnails = ThumbnailConfig(
        interval=reader.get("THUMBNAIL_INTERVAL_SECS", "5", _positive_seconds),
        width=reader.get("THUMBNAIL_WIDTH", "320", _non_negative_int),
        height=reader.get("THUMBNAIL_HEIGHT", "0", _non_negative_int),
        image_format=reader.get("THUMBNAIL_FORMAT", "jpg", _image_format))
    return thumbnails if enabled else None


def _e2ee_config(reader: _Reader) -> E2EEConfig | None:
    salt = reader.get("E2EE_RATCHET_SALT", "LKFrameEncryptionKey", _non_empty)
    derivation = reader.get("E2EE_KEY_DERIVATION", "pbkdf2", _key_derivation)
    passphrase = reader.exact_secret("E2EE_PASSPHRASE")
    return E2EEConfig(passphrase, salt, derivation) if passphrase is not None else None


def _key_derivation(raw: str) -> str:
    if raw.lower() not in ("pbkdf2", "hkdf"):
        raise ValueError("must be pbkdf2 (what every LiveKit SDK uses for a passphrase) "
                         "or hkdf")
    return raw.lower()


def _image_format(raw: str) -> str:
    name = raw.lower()
    if name == "jpeg":
        return "jpg"
    if name not in ("jpg", "png", "webp"):
        raise ValueError("must be jpg, png or webp")
    return name


def _webhook_urls(raw: str) -> tuple[str, ...]:
    urls = tuple(url.strip() for url in raw.split(",") if url.strip())
    for url in urls:
        parts = _split_url(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be http(s):// URLs, separated by commas")
        if parts.username or parts.password:
            raise ValueError("must not hold credentials (the events are signed with the "
                             "API key and secret; a receiver checks that)")
    return urls


def _livekit_url(raw: str) -> str:
    parts = _split_url(raw)
    if parts.scheme not in ("ws", "wss", "http", "https") or not parts.hostname:
        raise ValueError("must be a ws://, wss://, http:// or https:// URL with a host")
    return raw


def _s3_endpoint(raw: str, use_ssl: bool) -> str:
    scheme = "https" if use_ssl else "http"
    candidate = raw if "://" in raw else f"{scheme}://{raw}"
    rule = "must be host[:port] or http(s)://host[:port]"
    try:
        parts = _split_url(candidate)
    except ValueError:
        raise ValueError(rule) from None
    if (parts.scheme not in ("http", "https") or not parts.hostname
            or parts.path not in ("", "/") or parts.username is not None):
        raise ValueError(rule + " (credentials go in S3_ACCESS_KEY and S3_SECRET_KEY)"
                         if parts.username is not None else rule)
    return f"{parts.scheme}://{parts.netloc}"


def _s3_prefix(raw: str) -> str:
    parts = [p for p in raw.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError("must not contain '.' or '..' path segments")
    return "/".join(parts) + "/" if parts else ""


def _canned_acl(raw: str) -> str:
    if raw not in _CANNED_ACLS:
        raise ValueError("must be a canned ACL: " + ", ".join(sorted(_CANNED_ACLS)))
    return raw
