"""fMP4 segments (``init.mp4`` + ``segmentNNNNN.m4s``) for recordings that keep Opus.

Each segment is one moof+mdat holding every track. A sample's duration is known only
when the next one comes, so a segment is built when it closes: video samples last until
the next one (the last until the segment's end), Opus samples as long as their TOC says.
``output.mp4`` is the init segment and every media segment back to back: a playable
fragmented MP4 of the whole recording.

A keyframe that begins a segment with another configuration (an H.264 publisher that
changed its picture size: the recorder cuts there, after a DISCONTINUITY) gets an init
segment of its own, ``init-N.mp4``, which the playlist names in a new EXT-X-MAP. H.264
samples keep their parameter sets in band (``avc3``), so ``output.mp4``, whose header
is the first configuration's, decodes across the change as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import NoVideoConfig
from ..layout import FMP4_SEGMENT_SUFFIX, INIT_NAME, init_segment_name
from . import fmp4
from .audio import AudioFrame
from .files import atomic_write
from .fmp4_video import video_config, video_sample
from .tail import Pending
from .writer import SegmentedWriter


class Fmp4HlsWriter(SegmentedWriter):
    output_name = "output.mp4"
    init_name = INIT_NAME
    segment_suffix = FMP4_SEGMENT_SUFFIX

    def __init__(self, folder: Path, *, video: bool, audio_channels: int | None,
                 video_size: tuple[int, int] | None = None, video_codec: str = "h264",
                 **options: Any) -> None:
        self._video = video
        self._video_codec = video_codec
        self._audio = (fmp4.AudioConfig(audio_channels) if audio_channels is not None
                       else None)
        self._video_size = video_size
        self._init_written = False
        self._configurations: list[bytes] = []  # each init's video sample entry
        self._in_force = b""  # the open segment's
        self._video_samples: list[tuple[int, bytes, bool]] = []  # (pts, sample, keyframe)
        self._audio_samples: list[AudioFrame] = []
        self._segment_pts = 0
        super().__init__(folder, **options)

    def write_video(self, picture: bytes, pts: int, keyframe: bool) -> None:
        if not self._init_written:
            self._write_init(picture)
        elif keyframe and not self._video_samples:
            self._new_configuration(picture)
        self._video_samples.append((pts, video_sample(self._video_codec, picture), keyframe))

    def write_audio(self, frame: AudioFrame) -> None:
        if not self._init_written and not self._video:
            self._write_init(None)
        self._audio_samples.append(frame)

    def _discard_open_segment(self) -> None:
        self._video_samples.clear()
        self._audio_samples.clear()

    def _open_segment(self, pts: int) -> None:
        self._segment_pts = pts

    def _write_init(self, keyframe: bytes | None) -> None:
        video = None
        if keyframe is not None:
            video = video_config(self._video_codec, keyframe, self._video_size)
        init = fmp4.init_segment(video, self._audio)
        atomic_write(self.folder / INIT_NAME, init)
        self._output.write(init)
        self._init_written = True
        if video is not None:
            self._configurations.append(video.sample_entry)
            self._in_force = video.sample_entry

    def _new_configuration(self, keyframe: bytes) -> None:
        """A segment's first keyframe: its own init segment, if its configuration is
        not the one in force."""
        try:
            video = video_config(self._video_codec, keyframe, self._video_size)
        except NoVideoConfig:
            return
        if not self._configurations or video.sample_entry == self._in_force:
            return
        if video.sample_entry in self._configurations:  # back to an earlier one
            index = self._configurations.index(video.sample_entry)
        else:
            index = len(self._configurations)
            self._configurations.append(video.sample_entry)
            atomic_write(self.folder / init_segment_name(index),
                         fmp4.init_segment(video, self._audio))
        self._in_force = video.sample_entry
        self._map_uri = init_segment_name(index) if index else None

    def _position(self) -> tuple[int, int]:
        return len(self._video_samples), len(self._audio_samples)

    def _take_content(self) -> tuple[list[tuple[int, bytes, bool]], list[AudioFrame]]:
        content = self._video_samples, self._audio_samples
        self._video_samples, self._audio_samples = [], []
        return content

    def _segment_bytes(self, segment: Pending) -> bytes:
        """Built as it is published: a held segment may still be cut at its real media."""
        video, audio = segment.content
        if segment.trimmed:
            assert segment.real is not None
            videos, audios = segment.real.position
            video, audio = video[:videos], audio[:audios]
        runs = []
        if video:
            run = fmp4.TrackRun(fmp4.VIDEO_TRACK, video[0][0])
            ends = [pts for pts, _, _ in video[1:]] + [segment.end]
            for (pts, sample, keyframe), end in zip(video, ends, strict=True):
                run.samples.append((max(1, end - pts), len(sample), fmp4.sample_flags(keyframe)))
                run.data.append(sample)
            runs.append(run)
        if audio:
            run = fmp4.TrackRun(fmp4.AUDIO_TRACK, audio[0].pts)
            for frame in audio:
                run.samples.append((frame.duration, len(frame.data), 0))
                run.data.append(frame.data)
            runs.append(run)
        data = fmp4.media_segment(segment.sequence + 1, runs)
        self._output.write(data)
        return data
