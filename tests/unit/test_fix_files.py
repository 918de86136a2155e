"""fix on the file system: nothing of the input is lost, whatever the playlist names
(issue 16, item 4: same-named segments in two folders, a segment named twice, two
in-place runs in one second)."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher_hls_agent.repair.fix import fix_recording
from publisher_hls_agent.repair.tsrewrite import first_timestamp

from .test_repair import stream

pytestmark = pytest.mark.unit


def recording(folder: Path, uris: list[str], starts: list[int]) -> dict[str, bytes]:
    """Segments at ``uris`` (relative, in subfolders too) and their playlist."""
    contents = {}
    for uri, start in zip(uris, starts, strict=True):
        path = folder / uri
        path.parent.mkdir(parents=True, exist_ok=True)
        contents[uri] = stream(start, 30)
        path.write_bytes(contents[uri])
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1"]
    for uri in uris:
        lines += ["#EXTINF:9.0,", uri]
    (folder / "index.m3u8").write_text("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n")
    return contents


def test_same_named_segments_in_two_folders_stay_two(tmp_path: Path) -> None:
    originals = recording(tmp_path, ["a/seg.ts", "b/seg.ts"], [900_000, 990_000])
    result = fix_recording(tmp_path, None)
    fixed = {uri: (tmp_path / uri).read_bytes() for uri in originals}
    assert first_timestamp(fixed["a/seg.ts"]) == 0
    assert first_timestamp(fixed["b/seg.ts"]) == 90_000  # its own content, shifted
    [backup] = tmp_path.glob(".fix-backup-*")
    assert {uri: (backup / uri).read_bytes() for uri in originals} == originals
    assert not list(tmp_path.rglob("*.tmp")) and len(result.written) == 3


def test_same_named_segments_to_an_output_folder(tmp_path: Path) -> None:
    recording(tmp_path / "in", ["a/seg.ts", "b/seg.ts"], [900_000, 990_000])
    fix_recording(tmp_path / "in", tmp_path / "out")
    assert first_timestamp((tmp_path / "out/a/seg.ts").read_bytes()) == 0
    assert first_timestamp((tmp_path / "out/b/seg.ts").read_bytes()) == 90_000


def test_a_segment_named_twice_is_rewritten_once(tmp_path: Path) -> None:
    recording(tmp_path, ["s0.ts", "s1.ts"], [900_000, 990_000])
    playlist = tmp_path / "index.m3u8"
    playlist.write_text(playlist.read_text().replace("#EXT-X-ENDLIST",
                                                     "#EXTINF:9.0,\ns0.ts\n#EXT-X-ENDLIST"))
    fix_recording(tmp_path, None)
    assert first_timestamp((tmp_path / "s0.ts").read_bytes()) == 0  # not shifted twice
    assert not list(tmp_path.rglob("*.tmp"))


def test_two_in_place_runs_in_one_second_keep_two_backups(tmp_path: Path) -> None:
    originals = recording(tmp_path, ["s0.ts"], [900_000])
    fix_recording(tmp_path, None)
    fix_recording(tmp_path, None)
    backups = sorted(tmp_path.glob(".fix-backup-*"))
    assert len(backups) == 2
    assert originals["s0.ts"] in {(b / "s0.ts").read_bytes() for b in backups}


@pytest.mark.parametrize("name", ["a\x00b.ts", "x" * 300 + ".ts"])
def test_an_unusable_segment_name_is_a_fix_error(tmp_path: Path, name: str) -> None:
    from publisher_hls_agent.repair.fix import FixError

    recording(tmp_path, ["s0.ts"], [900_000])
    playlist = tmp_path / "index.m3u8"
    playlist.write_text(playlist.read_text().replace("s0.ts", name))
    with pytest.raises(FixError, match="usable file name"):
        fix_recording(tmp_path, None)
