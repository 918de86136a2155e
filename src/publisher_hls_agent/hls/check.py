"""``check``: hold a recording to the HLS rules this product promises (DESIGN.md §4).

There is no open-source HLS validator for Linux, so this is ours. It reads the
playlist and every segment, MPEG-TS with ``tsparse`` or fMP4 with ``mp4parse`` (no
FFmpeg), measures each segment's real media span from its timestamps and reports
every rule broken:

- every segment starts with PAT then PMT (fMP4: a moof, after an init segment), and its
  video with SPS + PPS + IDR (VP9, AV1 in fMP4: a keyframe);
- every rounded EXTINF <= EXT-X-TARGETDURATION;
- every EXTINF, the last one included, within one frame of the segment's real duration;
- timestamps continuous from segment to segment unless EXT-X-DISCONTINUITY says otherwise:
  no gap between one segment's media and the next, no overlap either;
- the streams of the first segment present in every segment;
- the playlist ended (EXT-X-ENDLIST), timestamps starting at zero.
"""

from __future__ import annotations

import itertools
import math
import os
import stat
import statistics
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ..media import av1, h264, vp9
from .mp4parse import Mp4Error, Track, read_fragments, read_init
from .playlist import rounded_duration
from .tsparse import Pes, Program, TsError, read_pes

CLOCK = 90000
VIDEO_TYPES = {0x1B}
AUDIO_TYPES = {0x0F, 0x06}


class CheckError(Exception):
    """The input is not a recording that can be checked at all."""


@dataclass(frozen=True)
class Entry:
    uri: str
    duration: float
    discontinuity: bool


@dataclass
class MediaPlaylist:
    target_duration: int | None = None
    entries: list[Entry] = field(default_factory=list)
    ended: bool = False
    init_uri: str | None = None


@dataclass
class SegmentFacts:
    name: str
    extinf: float
    start: float | None = None  # seconds
    end: float | None = None
    frame: float = 0.0  # the longest frame duration seen: the tolerance unit
    streams: set[str] = field(default_factory=set)
    video_start: str = "-"

    @property
    def real(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start


@dataclass
class Report:
    playlist: Path
    segments: list[SegmentFacts] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def render(self) -> str:
        lines = [f"{self.playlist}"]
        for s in self.segments:
            real = f"{s.real:.3f}" if s.real is not None else "?"
            streams = "+".join(sorted(s.streams)) or "no media"
            lines.append(f"  {s.name}  EXTINF {s.extinf:.3f}  real {real}  [{streams}]  "
                         f"video starts {s.video_start}")
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  ERROR: {e}" for e in self.errors]
        lines.append(f"{'OK' if self.ok else 'FAILED'}: {len(self.segments)} segments, "
                     f"{sum(s.extinf for s in self.segments):.3f} s, "
                     f"{len(self.errors)} errors, {len(self.warnings)} warnings")
        return "\n".join(lines)


def parse_playlist(text: str) -> MediaPlaylist:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise CheckError("not an HLS playlist: the first line is not #EXTM3U")
    playlist = MediaPlaylist()
    duration: float | None = None
    discontinuity = False
    for line in lines[1:]:
        if line.startswith("#EXT-X-TARGETDURATION:"):
            playlist.target_duration = _number(line, int)
        elif line.startswith("#EXTINF:"):
            duration = _number(line, float)
        elif line == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif line == "#EXT-X-ENDLIST":
            playlist.ended = True
        elif line.startswith("#EXT-X-MAP:"):
            if 'URI="' not in line:
                raise CheckError(f"{line[:80]!r} has no URI")
            playlist.init_uri = line.split('URI="', 1)[1].split('"', 1)[0]
        elif not line.startswith("#"):
            if duration is None:
                raise CheckError(f"segment {line} has no #EXTINF")
            playlist.entries.append(Entry(line, duration, discontinuity))
            duration, discontinuity = None, False
    return playlist


def _number(line: str, kind: Callable[[str], N]) -> N:
    """The number of an #EXTINF or #EXT-X-TARGETDURATION line. It must be finite to be
    reasoned about; a finite but wrong one is for the rules to report."""
    text = line.split(":", 1)[1].split(",")[0].strip()
    try:
        value = kind(text)
    except ValueError:
        raise CheckError(f"{line[:80]!r}: {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise CheckError(f"{line[:80]!r}: not a finite number")
    return value


def _kind(pes: Pes) -> str | None:
    if pes.stream_type in VIDEO_TYPES:
        return "video"
    if pes.stream_type in AUDIO_TYPES:
        return "audio"
    return None


def _frame(times: list[int]) -> int:
    steps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return int(statistics.median(steps)) if steps else 0


def measure_segment(name: str, extinf: float, data: bytes, report: Report,
                    known_frames: dict[str, int] | None = None) -> SegmentFacts:
    facts = SegmentFacts(name, extinf)
    program = Program()
    times: dict[str, list[int]] = {}
    first_video: bytes | None = None
    try:
        for pes in read_pes(data, program):
            kind = _kind(pes)
            if kind is None or pes.pts is None:
                continue
            times.setdefault(kind, []).append(pes.pts)
            if kind == "video" and first_video is None:
                first_video = pes.data
    except TsError as exc:
        report.errors.append(f"{name}: {exc}")
        return facts
    if not program.tables_first:
        report.errors.append(f"{name}: does not start with PAT and PMT")
    facts.streams = set(times)
    if first_video is not None:
        _check_first_video(name, [n for n in h264.split_annexb(first_video) if n], facts,
                           report)
    if times:
        known = known_frames if known_frames is not None else {}
        # A stream with one frame in this segment lasts as long as its frames before.
        frames = {kind: _frame(sorted(ts)) or known.get(kind, 0) for kind, ts in times.items()}
        known.update({kind: frame for kind, frame in frames.items() if frame})
        facts.start = min(min(ts) for ts in times.values()) / CLOCK
        facts.end = max(max(ts) + frames[kind] for kind, ts in times.items()) / CLOCK
        facts.frame = max(frames.values()) / CLOCK
    return facts


def _fmp4_measure(tracks: dict[int, Track]) -> Callable[[str, float, bytes, Report],
                                                         SegmentFacts]:
    def measure(name: str, extinf: float, data: bytes, report: Report) -> SegmentFacts:
        facts = SegmentFacts(name, extinf)
        try:
            fragments = list(read_fragments(data))
        except (Mp4Error, struct.error) as exc:
            report.errors.append(f"{name}: {exc}")
            return facts
        if data[4:8] not in (b"moof", b"styp"):
            report.errors.append(f"{name}: does not start with a moof")
        starts, ends, frames = [], [], []
        for fragment in fragments:
            track = tracks.get(fragment.track_id)
            if track is None or not fragment.durations:
                continue
            kind = "video" if track.handler == "vide" else "audio"
            facts.streams.add(kind)
            starts.append(fragment.base_time / track.timescale)
            ends.append((fragment.base_time + sum(fragment.durations)) / track.timescale)
            frames.append(max(fragment.durations) / track.timescale)
            if kind == "video" and track.codec in _KEYFRAME_TESTS:
                _check_first_picture(name, track.codec, fragment.first_sample, facts, report)
            elif kind == "video":
                _check_first_video(name, _length_prefixed(fragment.first_sample), facts, report)
        if starts:
            facts.start, facts.end, facts.frame = min(starts), max(ends), max(frames)
        return facts

    return measure


def _length_prefixed(sample: bytes) -> list[bytes]:
    nals, position = [], 0
    while position + 4 <= len(sample):
        size = int.from_bytes(sample[position:position + 4], "big")
        nals.append(sample[position + 4:position + 4 + size])
        position += 4 + size
    return [n for n in nals if n]


def _check_first_video(name: str, nals: list[bytes], facts: SegmentFacts,
                       report: Report) -> None:
    kinds = [h264.nal_type(n) for n in nals]
    facts.video_start = ",".join(_NAL_NAMES.get(t, str(t)) for t in kinds)
    idr = kinds.index(h264.NAL_IDR) if h264.NAL_IDR in kinds else -1
    if idr < 0 or h264.NAL_SPS not in kinds[:idr] or h264.NAL_PPS not in kinds[:idr]:
        report.errors.append(f"{name}: video does not start with SPS, PPS and an IDR "
                             f"(starts {facts.video_start})")


_KEYFRAME_TESTS = {"vp09": vp9.is_keyframe, "av01": av1.is_keyframe}


def _check_first_picture(name: str, codec: str, sample: bytes, facts: SegmentFacts,
                         report: Report) -> None:
    """VP9 and AV1: the segment's first sample must be a keyframe (for AV1, one with
    its sequence header)."""
    try:
        keyframe = _KEYFRAME_TESTS[codec](sample)
    except ValueError as exc:  # each codec's payload errors (a broken leb128, say)
        facts.video_start = f"{codec} broken"
        report.errors.append(f"{name}: the first {codec} sample is broken ({exc})")
        return
    facts.video_start = f"{codec} {'keyframe' if keyframe else 'inter frame'}"
    if not keyframe:
        report.errors.append(f"{name}: video does not start with a {codec} keyframe")


_NAL_NAMES = {h264.NAL_SPS: "SPS", h264.NAL_PPS: "PPS", h264.NAL_IDR: "IDR",
              h264.NAL_SEI: "SEI", h264.NAL_AUD: "AUD", h264.NAL_SLICE: "P"}


# What check reads whole: more than this is no segment of ours (a 4K keyframe-only
# 10 s segment is a few hundred MB), and a playlist naming /dev/zero is not a file.
MAX_SEGMENT_BYTES = 1 << 30
N = TypeVar("N", int, float)
MAX_PLAYLIST_BYTES = 16 << 20


class FileRefused(OSError):
    """A file named by a playlist that check will not read whole; ``str()`` says why."""


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; FileRefused otherwise
    (a device, a FIFO, a folder, or too large), OSError if it cannot be read."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise FileRefused("not a regular file")
        if status.st_size > limit:
            raise FileRefused(f"{status.st_size} bytes, more than {limit} a file can be")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"more than {limit} bytes")
    return data


def check_recording(path: Path, *, require_end: bool = True) -> Report:
    playlist_path = path / "playlist.m3u8" if path.is_dir() else path
    try:
        text = read_regular_file(playlist_path, MAX_PLAYLIST_BYTES).decode("utf-8")
        playlist = parse_playlist(text)
    except FileRefused as exc:
        raise CheckError(f"{playlist_path}: {exc}") from exc
    except OSError as exc:
        raise CheckError(f"cannot read {playlist_path}: {exc.strerror}") from exc
    except ValueError as exc:  # UnicodeDecodeError too
        raise CheckError(f"{playlist_path}: {exc}") from exc
    report = Report(playlist_path)
    tracks: dict[int, Track] | None = None
    if playlist.init_uri:
        try:
            tracks = read_init(read_regular_file(playlist_path.parent / playlist.init_uri,
                                                 MAX_SEGMENT_BYTES))
        except FileRefused as exc:
            report.errors.append(f"{playlist.init_uri}: {exc}")
            return report
        except OSError:
            report.errors.append(f"{playlist.init_uri}: named in EXT-X-MAP but missing")
            return report
        except (Mp4Error, struct.error, UnicodeDecodeError) as exc:
            report.errors.append(f"{playlist.init_uri}: not a usable init segment ({exc})")
            return report
    if playlist.target_duration is None:
        report.errors.append("no #EXT-X-TARGETDURATION")
    if require_end and not playlist.ended:
        report.errors.append("no #EXT-X-ENDLIST: the recording was not finalized")
    if not playlist.entries:
        report.errors.append("the playlist names no segment")
    known_frames: dict[str, int] = {}
    for entry in playlist.entries:
        segment = playlist_path.parent / entry.uri
        try:
            data = read_regular_file(segment, MAX_SEGMENT_BYTES)
        except FileRefused as exc:
            report.errors.append(f"{entry.uri}: {exc}")
            continue
        except ValueError:  # a NUL in the name
            report.errors.append(f"{entry.uri!r}: not a usable file name")
            continue
        except OSError:
            report.errors.append(f"{entry.uri}: named in the playlist but missing")
            continue
        if tracks is None:
            facts = measure_segment(entry.uri, entry.duration, data, report, known_frames)
        else:
            facts = _fmp4_measure(tracks)(entry.uri, entry.duration, data, report)
        report.segments.append(facts)
    _check_rules(playlist, report)
    return report


def _check_rules(playlist: MediaPlaylist, report: Report) -> None:
    target = playlist.target_duration
    first_streams = report.segments[0].streams if report.segments else set()
    for index, facts in enumerate(report.segments):
        if target is not None and rounded_duration(facts.extinf) > target:
            report.errors.append(f"{facts.name}: EXTINF {facts.extinf:.3f} rounds above "
                                 f"TARGETDURATION {target}")
        missing = first_streams - facts.streams
        if missing:
            report.errors.append(f"{facts.name}: no {' or '.join(sorted(missing))}")
        if facts.start is None:
            continue
        following = report.segments[index + 1] if index + 1 < len(report.segments) else None
        continuous = following is not None and not playlist.entries[index + 1].discontinuity
        # A segment's media runs up to where the next one starts; the last one's to the
        # end of its last frame.
        end = following.start if continuous and following and following.start is not None \
            else facts.end
        assert end is not None
        real = end - facts.start
        tolerance = facts.frame + 0.001
        if abs(real - facts.extinf) > tolerance:
            report.errors.append(f"{facts.name}: EXTINF {facts.extinf:.3f} but the media "
                                 f"spans {real:.3f} s (tolerance one frame, {tolerance:.3f})")
        if continuous and facts.end is not None and end is not None and \
                facts.end - end > tolerance:
            report.errors.append(f"{facts.name}: media runs {facts.end - end:.3f} s into the "
                                 f"next segment (interleaving broken at the boundary)")
        if continuous and facts.end is not None and end - facts.end > tolerance:
            report.errors.append(f"{facts.name}: its media ends {end - facts.end:.3f} s before "
                                 "the next segment starts (timestamps jump without a "
                                 "DISCONTINUITY)")
        if continuous and following is not None and following.start is not None and abs(
                following.start - (facts.start + facts.extinf)) > tolerance:
            report.errors.append(
                f"{following.name}: starts at {following.start:.3f}, expected "
                f"{facts.start + facts.extinf:.3f} (timestamps jump without a DISCONTINUITY)")
    if report.segments and report.segments[0].start is not None \
            and report.segments[0].start > 1.0:
        report.warnings.append(f"timestamps start at {report.segments[0].start:.3f} s, "
                               "not at zero (`publisher-hls-agent fix` normalizes them)")
