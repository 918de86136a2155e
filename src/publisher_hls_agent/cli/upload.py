"""``upload PATH``: upload a finished local recording to the S3 store the environment
configures, with a progress bar. Objects already in the bucket, as ``.upload.json``
records them, are skipped."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ..config import Config
from ..layout import SUMMARY_NAME
from .common import EXIT_CONFIG, load_config, setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a recording folder (with recording.json)")


def execute(options: argparse.Namespace) -> int:
    setup_logging("WARNING")
    config = load_config()
    if config is None:
        return EXIT_CONFIG
    if config.s3 is None:
        print("publisher-hls-agent: S3_BUCKET is not set: nowhere to upload to",
              file=sys.stderr)
        return EXIT_CONFIG
    folder: Path = options.path
    if not (folder / SUMMARY_NAME).is_file():
        print(f"publisher-hls-agent: {folder} is not a finished recording (no recording.json)",
              file=sys.stderr)
        return EXIT_CONFIG
    return asyncio.run(_upload(config, folder))


async def _upload(config: Config, folder: Path) -> int:
    from ..errors import UploadError
    from ..storage.storage import Storage
    from ..storage.uploader import recording_files

    assert config.s3 is not None
    total = sum((folder / name).stat().st_size for name in recording_files(folder)
                if (folder / name).exists())
    done = 0

    def progress(name: str, size: int) -> None:
        nonlocal done
        done += size
        filled = int(30 * done / max(1, total))
        print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done / 1e6:7.1f} / "
              f"{total / 1e6:.1f} MB  {name:<24}", end="", file=sys.stderr, flush=True)

    async with Storage(config.s3) as storage:
        try:
            state = await storage.upload_finished(folder, progress)
        except UploadError as exc:
            print(f"\npublisher-hls-agent: upload failed: {exc}", file=sys.stderr)
            return 1
    print(f"\nuploaded to s3://{state.bucket}/{state.prefix} ({len(state.uploaded)} objects)",
          file=sys.stderr)
    return 0
