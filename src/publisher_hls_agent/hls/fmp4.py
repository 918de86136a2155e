"""Fragmented MP4 (ISO/IEC 14496-12) for HLS: an init segment and moof+mdat segments.

Used when Opus is kept (KEEP_OPUS): players take Opus from fMP4 (hls.js, Chromium,
Firefox), not from MPEG-TS. The video's sample entry and samples are each codec's own
(``fmp4_video.py``). Pure: bytes in, bytes out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

VIDEO_TRACK, AUDIO_TRACK = 1, 2
VIDEO_TIMESCALE, AUDIO_TIMESCALE = 90000, 48000
_KEY_FLAGS = 0x02000000  # sample_depends_on = 2: an IDR depends on nothing
_DELTA_FLAGS = 0x01010000  # depends on others, not a sync sample


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack("!I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack("!I", (version << 24) | flags), *payload)


@dataclass(frozen=True)
class VideoConfig:
    width: int
    height: int
    sample_entry: bytes  # avc3, vp09 or av01, with its configuration box


@dataclass(frozen=True)
class AudioConfig:
    channels: int


_MATRIX = struct.pack("!9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _track(track_id: int, timescale: int, handler: bytes, media_header: bytes,
           sample_entry: bytes, width: int = 0, height: int = 0) -> bytes:
    volume = 0x0100 if handler == b"soun" else 0
    tkhd = full_box(b"tkhd", 0, 3, struct.pack("!IIIII", 0, 0, track_id, 0, 0),
                    bytes(8), struct.pack("!hhhH", 0, 0, volume, 0), _MATRIX,
                    struct.pack("!II", width << 16, height << 16))
    mdhd = full_box(b"mdhd", 0, 0, struct.pack("!IIIIHH", 0, 0, timescale, 0, 0x55C4, 0))
    hdlr = full_box(b"hdlr", 0, 0, struct.pack("!I4s", 0, handler), bytes(12),
                    b"publisher-hls-agent\x00")
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack("!I", 1),
                                 full_box(b"url ", 0, 1)))
    stbl = box(b"stbl", full_box(b"stsd", 0, 0, struct.pack("!I", 1), sample_entry),
               full_box(b"stts", 0, 0, bytes(4)), full_box(b"stsc", 0, 0, bytes(4)),
               full_box(b"stsz", 0, 0, bytes(8)), full_box(b"stco", 0, 0, bytes(4)))
    minf = box(b"minf", media_header, dinf, stbl)
    return box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))


def visual_sample_entry(fourcc: bytes, width: int, height: int, *boxes: bytes) -> bytes:
    """A VisualSampleEntry (ISO/IEC 14496-12 12.1.3) holding ``boxes``."""
    return box(fourcc, bytes(6), struct.pack("!H", 1), bytes(16),
               struct.pack("!HHIIIH", width, height, 0x00480000, 0x00480000, 0, 1),
               bytes(32), struct.pack("!Hh", 0x18, -1), *boxes)


def _opus(config: AudioConfig) -> bytes:
    # dOps (Opus in ISOBMFF §4.3.2): WebRTC Opus has no pre-skip to signal.
    dops = box(b"dOps", struct.pack("!BBHIhB", 0, config.channels, 0, AUDIO_TIMESCALE, 0, 0))
    return box(b"Opus", bytes(6), struct.pack("!H", 1), bytes(8),
               struct.pack("!HHHHI", config.channels, 16, 0, 0, AUDIO_TIMESCALE << 16), dops)


def init_segment(video: VideoConfig | None, audio: AudioConfig | None) -> bytes:
    tracks = []
    trex = []
    if video is not None:
        tracks.append(_track(VIDEO_TRACK, VIDEO_TIMESCALE, b"vide",
                             full_box(b"vmhd", 0, 1, bytes(8)), video.sample_entry,
                             video.width, video.height))
        trex.append(full_box(b"trex", 0, 0, struct.pack("!IIIII", VIDEO_TRACK, 1, 0, 0, 0)))
    if audio is not None:
        tracks.append(_track(AUDIO_TRACK, AUDIO_TIMESCALE, b"soun",
                             full_box(b"smhd", 0, 0, bytes(4)), _opus(audio)))
        trex.append(full_box(b"trex", 0, 0, struct.pack("!IIIII", AUDIO_TRACK, 1, 0, 0, 0)))
    next_track = max(VIDEO_TRACK if video else 0, AUDIO_TRACK if audio else 0) + 1
    mvhd = full_box(b"mvhd", 0, 0, struct.pack("!IIII", 0, 0, 1000, 0),
                    struct.pack("!IH", 0x00010000, 0x0100), bytes(10), _MATRIX, bytes(24),
                    struct.pack("!I", next_track))
    ftyp = box(b"ftyp", b"iso6", struct.pack("!I", 0), b"iso6", b"mp41", b"avc1")
    return ftyp + box(b"moov", mvhd, *tracks, box(b"mvex", *trex))


@dataclass
class TrackRun:
    """The samples of one track in one fragment."""

    track_id: int
    base_time: int  # tfdt, in the track's timescale
    samples: list[tuple[int, int, int]] = field(default_factory=list)  # (duration, size, flags)
    data: list[bytes] = field(default_factory=list)


def media_segment(sequence: int, runs: list[TrackRun]) -> bytes:
    """moof + mdat for one fragment holding every track's run."""
    runs = [run for run in runs if run.samples]

    def moof(offsets: list[int]) -> bytes:
        trafs = []
        for run, offset in zip(runs, offsets, strict=True):
            tfhd = full_box(b"tfhd", 0, 0x020000, struct.pack("!I", run.track_id))
            tfdt = full_box(b"tfdt", 1, 0, struct.pack("!Q", run.base_time))
            entries = b"".join(struct.pack("!III", *sample) for sample in run.samples)
            trun = full_box(b"trun", 0, 0x000701, struct.pack("!Ii", len(run.samples), offset),
                            entries)
            trafs.append(box(b"traf", tfhd, tfdt, trun))
        return box(b"moof", full_box(b"mfhd", 0, 0, struct.pack("!I", sequence)), *trafs)

    sizes = [sum(len(d) for d in run.data) for run in runs]
    header = len(moof([0] * len(runs))) + 8  # the mdat header follows the moof
    offsets, position = [], header
    for size in sizes:
        offsets.append(position)
        position += size
    return moof(offsets) + box(b"mdat", *(d for run in runs for d in run.data))


def sample_flags(keyframe: bool) -> int:
    return _KEY_FLAGS if keyframe else _DELTA_FLAGS
