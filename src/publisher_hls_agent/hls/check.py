"""``check``: hold a recording to the HLS rules this product promises (DESIGN.md §4).

There is no open-source HLS validator for Linux, so this is ours. It reads the
playlist and every segment with the readers ``fix`` uses too (``inspection/``: no
FFmpeg), measures each segment's real media span from its timestamps
(``check_segments.py``) and reports every rule broken:

- every segment starts with PAT then PMT (fMP4: a moof, after an init segment), and its
  video with SPS + PPS + IDR (VP9, AV1 in fMP4: a keyframe);
- every rounded EXTINF <= EXT-X-TARGETDURATION;
- every EXTINF, the last one included, within one frame of the segment's real duration;
- timestamps continuous from segment to segment unless EXT-X-DISCONTINUITY says otherwise:
  no gap between one segment's media and the next, no overlap either;
- the streams of the first segment present in every segment;
- the playlist ended (EXT-X-ENDLIST), timestamps starting at zero;
- every frame decodes (``check_decode.py``; ``decode=False`` skips this).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CheckError, FileRefused, Mp4Error, PlaylistError
from ..inspection.files import (
    MAX_PLAYLIST_BYTES,
    MAX_SEGMENT_BYTES,
    read_regular_file,
)
from ..inspection.mp4parse import Track, read_init
from ..inspection.playlist import MediaPlaylist
from ..layout import PLAYLIST_NAME
from .check_decode import decode_errors
from .check_segments import SegmentFacts, measure_fmp4, measure_ts
from .playlist import rounded_duration


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
    """The playlist, read strictly: CheckError for a line that cannot be read."""
    try:
        return MediaPlaylist.parse(text, strict=True)
    except PlaylistError as exc:
        raise CheckError(str(exc)) from None


def check_recording(path: Path, *, require_end: bool = True, decode: bool = True) -> Report:
    playlist_path = path / PLAYLIST_NAME if path.is_dir() else path
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
    inits: dict[str, tuple[bytes, dict[int, Track]] | None] = {}  # by URI: each read once
    if playlist.init_uri:
        inits[playlist.init_uri] = _read_init(playlist_path.parent, playlist.init_uri, report)
        if inits[playlist.init_uri] is None:
            return report
    if playlist.target_duration is None:
        report.errors.append("no #EXT-X-TARGETDURATION")
    if require_end and not playlist.ended:
        report.errors.append("no #EXT-X-ENDLIST: the recording was not finalized")
    if not playlist.entries:
        report.errors.append("the playlist names no segment")
    known_frames: dict[str, int] = {}
    previous_map = playlist.entries[0].map_uri if playlist.entries else None
    for entry in playlist.entries:
        if entry.map_uri != previous_map and not entry.discontinuity:
            report.errors.append(f"{entry.uri}: a new EXT-X-MAP ({entry.map_uri}) without "
                                 "an EXT-X-DISCONTINUITY before it")
        previous_map = entry.map_uri
        if entry.map_uri is not None and entry.map_uri not in inits:
            inits[entry.map_uri] = _read_init(playlist_path.parent, entry.map_uri, report)
        init = inits.get(entry.map_uri) if entry.map_uri is not None else (b"", None)
        data = _read_segment(playlist_path.parent, entry.uri, report)
        if data is None or init is None:
            continue
        assert entry.duration is not None  # read strictly: every EXTINF is a number
        init_bytes, tracks = init
        if tracks is None:
            facts = measure_ts(entry.uri, entry.duration, data, known_frames)
        else:
            facts = measure_fmp4(entry.uri, entry.duration, data, tracks)
        report.errors += facts.errors
        report.segments.append(facts)
        if decode and not facts.errors:
            report.errors += decode_errors(entry.uri, data, init_bytes)
    _check_rules(playlist, report)
    return report


def _read_init(folder: Path, uri: str,
               report: Report) -> tuple[bytes, dict[int, Track]] | None:
    """The init segment EXT-X-MAP names, and its tracks; None (and why, in the report)
    when there are none to read: no segment can be measured then."""
    try:
        data = read_regular_file(folder / uri, MAX_SEGMENT_BYTES)
        return data, read_init(data)
    except FileRefused as exc:
        report.errors.append(f"{uri}: {exc}")
    except OSError:
        report.errors.append(f"{uri}: named in EXT-X-MAP but missing")
    except (Mp4Error, struct.error, UnicodeDecodeError) as exc:
        report.errors.append(f"{uri}: not a usable init segment ({exc})")
    return None


def _read_segment(folder: Path, uri: str, report: Report) -> bytes | None:
    """A segment's bytes; None (and why, in the report) when it cannot be read."""
    try:
        return read_regular_file(folder / uri, MAX_SEGMENT_BYTES)
    except FileRefused as exc:
        report.errors.append(f"{uri}: {exc}")
    except ValueError:  # a NUL in the name
        report.errors.append(f"{uri!r}: not a usable file name")
    except OSError:
        report.errors.append(f"{uri}: named in the playlist but missing")
    return None


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
