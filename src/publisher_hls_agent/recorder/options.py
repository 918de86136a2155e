"""How a recorder records, from the configuration: light to import, as the worker
(which never records itself) passes it to its recording processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config, E2EEConfig, ThumbnailConfig
from ..media.codecs import DEFAULT_X264_PRESET, FMP4, TS, RecordingFormat


@dataclass(frozen=True)
class RecorderOptions:
    output_dir: Path
    segment_duration: float = 2.0
    max_segments: int = 0
    auto_activate: bool = False
    keep_opus: bool = False  # Opus kept (in fMP4 segments) instead of AAC (in MPEG-TS)
    expected_kinds: frozenset[str] = frozenset({"audio", "video"})
    # Seconds finalizing waits for a transcoder to go through the frames it is behind
    # (room/tracks.TranscodingReader): half of SHUTDOWN_TIMEOUT, the rest for uploads.
    catch_up_within: float = 30.0
    transcode_preset: str = DEFAULT_X264_PRESET
    # Where each recording's events go (notify/); never shown (a URL may hold a token).
    webhook_urls: tuple[str, ...] = field(default=(), repr=False)
    thumbnails: ThumbnailConfig | None = None  # None: no thumbnails
    e2ee: E2EEConfig | None = field(default=None, repr=False)  # the room's shared key

    @classmethod
    def from_config(cls, config: Config) -> RecorderOptions:
        return cls(output_dir=config.output_dir, segment_duration=config.segment_duration,
                   max_segments=config.max_segments, auto_activate=config.auto_activate,
                   keep_opus=config.segment_format == FMP4,
                   catch_up_within=config.worker.shutdown_timeout / 2,
                   transcode_preset=config.transcode_preset,
                   webhook_urls=config.webhook_urls,
                   thumbnails=config.thumbnails, e2ee=config.e2ee)

    @property
    def format(self) -> RecordingFormat:
        """The segments' container and audio codec, and the video they carry as it came."""
        return RecordingFormat.for_container(FMP4 if self.keep_opus else TS)
