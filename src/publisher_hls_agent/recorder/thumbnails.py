"""Thumbnails made while recording: every ``interval`` seconds of media, the first
keyframe written at or after that instant is decoded (that one picture only: the video
stays passed through, and no keyframe is asked for on its account), scaled and saved
as ``thumbnails/thumbNNNNN.jpg`` (or png, webp), listed in ``thumbnails/thumbnails.m3u8``
(an ``EXT-X-IMAGES-ONLY`` playlist, each image's EXTINF the media it stands for).

Decoding and encoding an image take milliseconds: they run on a thread of their own,
off the event loop. ``ThumbnailSchedule`` is the pure part.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
from av.video.frame import VideoFrame

from ..config import ThumbnailConfig
from ..hls.files import atomic_write
from ..layout import THUMBNAILS_FOLDER, THUMBNAILS_PLAYLIST
from ..media.codecs import codec_named

logger = logging.getLogger(__name__)

IMAGE_FORMATS = ("jpg", "png", "webp")
# FFmpeg's encoder and the pixel format it takes, per format.
_ENCODERS = {"jpg": ("mjpeg", "yuvj420p"), "png": ("png", "rgb24"),
             "webp": ("libwebp", "yuv420p")}
_FINISH_WITHIN = 10.0  # seconds the last images may take once the recording ends


class ThumbnailSchedule:
    """Which keyframes become thumbnails: the first at or after each multiple of the
    interval (media time)."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._due = 0.0

    def wants(self, seconds: float) -> bool:
        if seconds < self._due:
            return False
        self._due = (math.floor(seconds / self._interval) + 1) * self._interval
        return True


def scaled_size(source: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """The thumbnail's size (even sides), keeping the aspect ratio where one is 0."""
    source_width, source_height = source
    if width and not height:
        height = round(source_height * width / source_width)
    elif height and not width:
        width = round(source_width * height / source_height)
    elif not width and not height:
        width, height = source
    return max(2, width & ~1), max(2, height & ~1)


@dataclass(frozen=True)
class Thumbnail:
    name: str  # in THUMBNAILS_FOLDER
    at: float  # media seconds of its picture


class Thumbnails:
    """One recording's thumbnails. ``keyframe`` is called (on the loop) for every
    keyframe written; ``finish`` waits for the images in progress and closes the
    playlist. A picture that cannot be decoded is skipped, never the recording's end."""

    def __init__(self, folder: Path, video_codec: str, options: ThumbnailConfig, *,
                 made: Callable[[str], None] = lambda name: None) -> None:
        """``made(name)`` is called on the loop once an image and the playlist naming it
        are on disk (a real-time upload takes them then)."""
        self.folder = folder / THUMBNAILS_FOLDER
        self._made = made
        self._loop: asyncio.AbstractEventLoop | None
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # made outside a loop (a unit test): nobody to tell
            self._loop = None
        self._codec = video_codec
        self._options = options
        self._schedule = ThumbnailSchedule(options.interval)
        self._queue: queue.SimpleQueue[tuple[bytes, float] | None] = queue.SimpleQueue()
        self.made: list[Thumbnail] = []  # written by the thread, read after ``finish``
        self._thread = threading.Thread(target=self._run, name="thumbnails", daemon=True)
        self._thread.start()

    def keyframe(self, data: bytes, seconds: float) -> None:
        if self._schedule.wants(seconds):
            self._queue.put((data, seconds))

    def finish(self, end: float) -> list[Thumbnail]:
        """After the last keyframe: the images made, their playlist ended at ``end``
        (media seconds)."""
        self._queue.put(None)
        self._thread.join(_FINISH_WITHIN)
        made = list(self.made)
        if made:
            self._write_playlist(made, end, ended=True)
        return made

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            data, seconds = item
            try:
                image = self._image(data)
            except (av.error.FFmpegError, ValueError) as exc:
                logger.warning("no thumbnail at %.1f s: %s", seconds, exc)
                continue
            if image is None:
                continue
            name = f"thumb{len(self.made):05d}.{self._options.image_format}"
            try:
                self.folder.mkdir(exist_ok=True)
                atomic_write(self.folder / name, image)
            except OSError as exc:
                logger.warning("no thumbnail at %.1f s: %s", seconds, exc)
                continue
            self.made.append(Thumbnail(name, seconds))
            self._write_playlist(self.made, seconds + self._options.interval, ended=False)
            if self._loop is not None:
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody to tell
                    self._loop.call_soon_threadsafe(self._made, name)

    def _image(self, keyframe: bytes) -> bytes | None:
        """The keyframe decoded on its own (it needs nothing before it), scaled and
        encoded; None if the decoder gave no picture."""
        name, options = codec_named(self._codec).decoder or ("h264", {})  # H.264: FFmpeg's
        decoder = cast(av.VideoCodecContext, av.CodecContext.create(name, "r"))
        decoder.options = dict(options)
        pictures = [*decoder.decode(av.Packet(keyframe)), *decoder.decode(None)]
        if not pictures:
            return None
        picture: VideoFrame = pictures[0]
        encoder_name, pixel_format = _ENCODERS[self._options.image_format]
        width, height = scaled_size((picture.width, picture.height), self._options.width,
                                    self._options.height)
        frame = picture.reformat(width=width, height=height, format=pixel_format,
                                 interpolation="AREA")
        encoder = cast(av.VideoCodecContext, av.CodecContext.create(encoder_name, "w"))
        encoder.width, encoder.height, encoder.pix_fmt = width, height, pixel_format
        encoder.time_base = Fraction(1, 1)
        if encoder_name == "mjpeg":
            encoder.options = {"qmin": "2", "qmax": "4"}  # a good picture: it is small
        frame.pts = 0
        return b"".join(bytes(p) for p in [*encoder.encode(frame), *encoder.encode(None)])

    def _write_playlist(self, made: list[Thumbnail], end: float, *, ended: bool) -> None:
        durations = [b.at - a.at for a, b in itertools.pairwise(made)]
        durations.append(max(0.001, end - made[-1].at))
        lines = ["#EXTM3U", "#EXT-X-VERSION:7",
                 f"#EXT-X-TARGETDURATION:{max(1, math.ceil(max(durations)))}",
                 "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-IMAGES-ONLY"]
        if not ended:
            lines.append("#EXT-X-PLAYLIST-TYPE:EVENT")
        for thumbnail, duration in zip(made, durations, strict=True):
            lines += [f"#EXTINF:{duration:.3f},", thumbnail.name]
        if ended:
            lines.append("#EXT-X-ENDLIST")
        try:
            atomic_write(self.folder / THUMBNAILS_PLAYLIST, ("\n".join(lines) + "\n").encode())
        except OSError as exc:
            logger.warning("thumbnails playlist not written: %s", exc)
