"""``run``: the agent worker. Registers with the LiveKit server, records every job's
publisher, serves the HTTP API, and on SIGTERM/SIGINT finalizes every recording before
it exits (status 0 when all of them ended within ``SHUTDOWN_TIMEOUT``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import tempfile
from pathlib import Path

from ..config import Config
from .common import EXIT_CONFIG, load_config, setup_logging

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check-only", action="store_true",
                        help="validate the configuration and the server credentials, then exit")


def execute(options: argparse.Namespace) -> int:
    setup_logging()
    config = load_config()
    if config is None:
        return EXIT_CONFIG
    logger.info("configuration: %r", config)
    if options.check_only:
        return asyncio.run(_check_server(config))
    return asyncio.run(_serve(config))


async def _serve(config: Config) -> int:
    from ..api.server import build_app, start_server
    from ..errors import CredentialsRejected
    from ..worker.agent import RecorderAgent

    problem = _output_dir_problem(config.output_dir)
    if problem is not None:
        logger.error("OUTPUT_DIR %s: %s", config.output_dir, problem)
        return EXIT_CONFIG
    agent = RecorderAgent(config, log_level=os.environ.get("LOG_LEVEL", "INFO"))
    runner = None
    if config.worker.http_port:
        try:
            runner = await start_server(
                build_app(agent, agent.metrics, config.api_key, config.api_secret,
                          output_dir=config.output_dir,
                          player_url=config.worker.preview_player_url),
                config.worker.http_host, config.worker.http_port)
        except OSError as exc:
            logger.error("HTTP_HOST/HTTP_PORT %s:%d: cannot listen (%s)",
                         config.worker.http_host, config.worker.http_port, exc.strerror)
            return EXIT_CONFIG
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    worker = asyncio.create_task(agent.run())
    stop = asyncio.create_task(stopping.wait())
    await asyncio.wait({worker, stop}, return_when=asyncio.FIRST_COMPLETED)
    status = 0
    if worker.done() and isinstance(worker.exception(), CredentialsRejected):
        logger.error("%s", worker.exception())
        status = EXIT_CONFIG
    elif worker.done() and worker.exception() is not None:
        logger.error("the worker stopped", exc_info=worker.exception())
        status = 1
    stop.cancel()
    logger.info("stopping: no new jobs; finalizing the recordings in progress")
    clean = await agent.shutdown()
    worker.cancel()
    if runner is not None:
        await runner.cleanup()
    if status == 0 and not clean:
        status = 1
    logger.info("stopped (exit status %d)", status)
    return status


def _output_dir_problem(output_dir: Path) -> str | None:
    """Why recordings could not be written there, or None: found before any job is
    taken rather than by the first recording."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        return f"not a writable folder ({exc.strerror})"
    return None


async def _check_server(config: Config) -> int:
    from livekit import api

    http_url = config.livekit_url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    async with api.LiveKitAPI(http_url, config.api_key, config.api_secret) as client:
        try:
            rooms = await client.room.list_rooms(api.ListRoomsRequest())
        except Exception as exc:  # the SDK raises aiohttp and Twirp errors alike
            logger.error("LiveKit server at %s refused or unreachable: %s",
                         config.livekit_url, type(exc).__name__)
            return 1
    logger.info("LiveKit server at %s accepts the credentials (%d rooms)",
                config.livekit_url, len(rooms.rooms))
    return 0
