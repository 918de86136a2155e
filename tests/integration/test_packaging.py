"""What ``pip install .`` ships: the product, without the test bed, and it runs there."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from testbed import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a copy: setuptools builds in the source folder (build/)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(source)], check=True, timeout=600)
    (wheel,) = out.glob("publisher_hls_agent-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(out / "site")
    return out / "site"


def run_from_wheel(site: Path, cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The command line with only the wheel's files for the product (the virtualenv gives
    the dependencies), from a folder outside the checkout."""
    program = (f"import sys; sys.path.insert(0, {str(site)!r}); import publisher_hls_agent; "
               f"assert publisher_hls_agent.__file__.startswith({str(site)!r}); "
               "from publisher_hls_agent.cli.main import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-I", "-c", program, *arguments], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_the_wheel_holds_the_product_and_no_test_bed(unpacked_wheel: Path) -> None:
    packages = {path.name for path in unpacked_wheel.iterdir()}
    assert "publisher_hls_agent" in packages
    assert "testbed" not in packages and "tests" not in packages
    assert not list(unpacked_wheel.rglob("testbed"))
    for page in ("preview.html", "replay.html", "token.js"):  # what the pages are made of
        assert (unpacked_wheel / "publisher_hls_agent" / "api" / page).is_file(), page


@pytest.mark.parametrize("arguments", [["--help"], ["check", "--help"], ["fix", "--help"],
                                       ["run", "--help"]])
def test_the_installed_commands_run_without_the_checkout(unpacked_wheel: Path, tmp_path: Path,
                                                         arguments: list[str]) -> None:
    """Nothing reaches into the checkout or the test bed."""
    result = run_from_wheel(unpacked_wheel, tmp_path, *arguments)
    assert result.returncode == 0, result.stderr
    assert "usage: publisher-hls-agent" in result.stdout
    assert "Traceback" not in result.stderr


def test_check_works_from_the_wheel(unpacked_wheel: Path, tmp_path: Path) -> None:
    (tmp_path / "playlist.m3u8").write_text("#EXTM3U\n")
    result = run_from_wheel(unpacked_wheel, tmp_path, "check", str(tmp_path))
    assert result.returncode == 1 and "no #EXT-X-ENDLIST" in result.stdout, result
