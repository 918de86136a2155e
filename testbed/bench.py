"""The benchmark: what recordings cost the agent, at N = 1, 4, 16, 32 publishers.

A real livekit-server, publishers in processes of their own (the official SDK sending a
pre-encoded loop, so they cost little), and the agent as its users run it
(``publisher-hls-agent run``: the worker and its recording processes, auto activation,
a room created with its dispatch). For the agent's processes only it prints, per mode
(``opus``: KEEP_OPUS=true, pure passthrough; ``aac``: Opus transcoded to AAC):

- CPU per recording: the process tree's CPU seconds / wall seconds / N, in % of a core;
- resident memory of the tree, and its slope over N: memory per extra recording;
- time from activation to the first segment on disk (from each ``recording.json``);
- video frames lost in transit or dropped, and packets late;
- what the recordings hold (read back from their files): the lowest share of the
  frames their duration should hold, the longest gap between two pictures (media
  time), and the packets the network lost and the recorder got back;
- livekit-server's own CPU in the same window, per recording, and the agent/SFU ratio.

``--loss PERCENT`` drops that share of UDP in the test namespace (``testbed/loss.py``;
``--loss-leg recorder`` only what the SFU sends), ``--busy`` keeps one core busy with
a process of its own for the whole run. ``--publisher chromium-vp8`` (or
``chromium-h264``, or both comma-separated, taken in turn) publishes from Chromium
running livekit-client with its defaults (simulcast, 1280x720) instead, one browser
each: what browser rooms cost, transcoding included. (Four Chromiums encoding 720p
simulcast fill this 2-core machine on their own, and Chromium resets its renderers'
niceness: with them the agent competes for the CPU with the very publishers it records.)

``--soak SECONDS`` records one publisher that long instead, sampling memory, and checks
the recording at the end. Results also go to a JSON file for comparing runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from livekit import api

from publisher_hls_agent.hls.check import check_recording
from publisher_hls_agent.layout import SUMMARY_NAME
from publisher_hls_agent.worker.load import TreeCpu, cpu_seconds_by_pid, process_tree

from . import ROOT, module_command
from .agent_process import AgentProcess, running_agent
from .browser_publisher import browser_publishing
from .frames import video_figures
from .livekit_server import LiveKitServer, running_server
from .loss import PacketLoss
from .publisher import make_token

SIZES = {"360p": (640, 360, 800_000), "720p": (1280, 720, 2_000_000),
         "1080p": (1920, 1080, 4_000_000)}
PUBLISHERS_PER_PROCESS = 8


@dataclass
class Row:
    mode: str
    publishers: int
    seconds: float
    cpu_per_recording: float  # % of one core
    rss_mb: float  # the agent's process tree, each process's resident set summed
    first_segment_median: float | None
    first_segment_max: float | None
    frames_lost: int
    frames_dropped: int
    packets_late: int
    recordings: int
    sfu_cpu_per_stream: float = 0.0  # livekit-server's CPU per recording, % of a core
    agent_sfu_ratio: float = 0.0
    frames_recorded_min: float = 0.0  # the lowest share over the recordings
    longest_gap: float = 0.0  # seconds, over every recording
    packets_lost: int = 0
    packets_recovered: int = 0
    most_delay: float = 0.0  # seconds: the transcoder's lag at its worst
    # The same tree's memory with each shared page counted once (the sum of the
    # proportional set sizes): what the machine gives it. The recording processes share
    # the media stack their fork server loaded, which RSS counts once per process.
    pss_mb: float = 0.0


@dataclass
class Results:
    size: str
    rows: list[Row] = field(default_factory=list)
    memory_per_recording_mb: dict[str, float] = field(default_factory=dict)
    soak: dict[str, Any] | None = None


def rss_mb(pids: list[int]) -> float:
    return _sum_kb(pids, "status", "VmRSS:")


def pss_mb(pids: list[int]) -> float:
    return _sum_kb(pids, "smaps_rollup", "Pss:")


def _sum_kb(pids: list[int], file: str, field: str) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
                if line.startswith(field):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def start_publishers(server: LiveKitServer, room: str, count: int, size: str,
                           seconds: float) -> list[asyncio.subprocess.Process]:
    width, height, bitrate = SIZES[size]
    processes = []
    for first in range(0, count, PUBLISHERS_PER_PROCESS):
        group = min(PUBLISHERS_PER_PROCESS, count - first)
        processes.append(await asyncio.create_subprocess_exec(
            *module_command("publisher"), "--url", server.url,
            "--api-key", server.api_key, "--api-secret", server.api_secret, "--room", room,
            "--identity", f"p{first // PUBLISHERS_PER_PROCESS}", "--count", str(group),
            "--looped", "--red", "--width", str(width), "--height", str(height),
            "--bitrate", str(bitrate), "--duration", str(seconds),
            stdout=asyncio.subprocess.DEVNULL, cwd=ROOT))
    return processes


@contextlib.asynccontextmanager
async def publishing(server: LiveKitServer, room: str, kinds: list[str], count: int,
                     size: str, seconds: float, scratch: Path) -> AsyncIterator[None]:
    """``count`` publishers in ``room`` while the block runs: the SDK's (``sdk``), or
    Chromium's with livekit-client (``chromium-vp8``, ``chromium-h264``), ``kinds``
    taken in turn."""
    if kinds == ["sdk"]:
        processes = await start_publishers(server, room, count, size, seconds)
        try:
            yield
        finally:
            await stop(processes)
        return
    width, height, _ = SIZES[size]
    async with contextlib.AsyncExitStack() as stack:
        for index in range(count):
            codec = kinds[index % len(kinds)].removeprefix("chromium-")
            identity = f"chromium-{codec}-{index}"
            folder = scratch / identity
            folder.mkdir(parents=True, exist_ok=True)
            await stack.enter_async_context(browser_publishing(
                server.url, make_token(server.api_key, server.api_secret, room, identity),
                codec, width=width, height=height, scratch=folder))
        yield


async def stop(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.terminate()
    for process in processes:
        await process.wait()


def summaries(output: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in output.glob(f"*/{SUMMARY_NAME}")]


async def wait_until(condition: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.25)
    return False


async def create_room(server: LiveKitServer, room: str, agent_name: str) -> None:
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
        await lk.room.create_room(api.CreateRoomRequest(
            name=room, agents=[api.RoomAgentDispatch(agent_name=agent_name)]))


async def measure(server: LiveKitServer, work: Path, mode: str, count: int, size: str,
                  seconds: float, loss: PacketLoss | None = None, loss_percent: float = 0.0,
                  loss_only: str = "", publishers: tuple[str, ...] = ("sdk",),
                  log_level: str = "WARNING") -> Row:
    output = work / f"{mode}-{count}"
    name = f"bench-{mode}-{count}"
    async with running_agent(server, output, work / f"{name}.log", AGENT_NAME=name,
                             AUTO_ACTIVATE_RECORDING="true", MAX_RECORDINGS="100",
                             KEEP_OPUS="true" if mode == "opus" else "false",
                             LOG_LEVEL=log_level) as agent:
        await create_room(server, name, name)
        async with publishing(server, name, list(publishers), count, size, seconds + 120,
                              work / "pages"):
            started = await wait_until(
                lambda: len(list(output.glob("*/segment00001.*"))) >= count, 60)
            if not started:
                print(f"  only {len(list(output.glob('*/segment00001.*')))} of {count} "
                      "recordings started within 60 s", flush=True)
            await asyncio.sleep(3)
            if loss is not None:
                loss.set(loss_percent, loss_only)
            try:
                row = await sample(agent, server, mode, count, seconds)
            finally:
                if loss is not None:
                    loss.set(0)
        await wait_until(lambda: len(summaries(output)) >= count, 60)
    found = summaries(output)
    firsts = [s["first_segment_after_activation"] for s in found
              if s.get("first_segment_after_activation") is not None]
    row.recordings = len(found)
    row.first_segment_median = round(statistics.median(firsts), 2) if firsts else None
    row.first_segment_max = round(max(firsts), 2) if firsts else None
    row.frames_lost = sum(s["receive"]["video_frames_lost"] for s in found)
    row.frames_dropped = sum(s["frames"]["dropped"] for s in found)
    row.most_delay = max((s["frames"].get("most_delay", 0.0) for s in found), default=0.0)
    row.packets_late = sum(s["receive"]["packets_late"] for s in found)
    row.packets_lost = sum(s["receive"].get("packets_lost", 0) for s in found)
    row.packets_recovered = sum(s["receive"].get("packets_recovered", 0)
                                + s["receive"].get("red_recovered", 0) for s in found)
    figures = [video_figures(Path(s["folder"]), 30) for s in found if s.get("video")]
    if figures:
        row.frames_recorded_min = round(min(f.ratio for f in figures), 4)
        row.longest_gap = round(max(f.longest_gap for f in figures), 3)
    return row


async def sample(agent: AgentProcess, server: LiveKitServer, mode: str, count: int,
                 seconds: float) -> Row:
    # Per process: one that ends in the window (a transcoder) must not take back what
    # it had used before it; one that begins counts from its start.
    agent_cpu, server_cpu = TreeCpu(), TreeCpu()
    before = agent_cpu.read(cpu_seconds_by_pid(process_tree([agent.process.pid])))
    sfu_before = server_cpu.read(cpu_seconds_by_pid([server.pid]))
    wall = time.monotonic()
    await asyncio.sleep(seconds)
    pids = process_tree([agent.process.pid])
    cpu = agent_cpu.read(cpu_seconds_by_pid(pids)) - before
    sfu = server_cpu.read(cpu_seconds_by_pid([server.pid])) - sfu_before
    wall = time.monotonic() - wall
    row = Row(mode, count, round(wall, 1), round(100 * cpu / wall / count, 2),
              round(rss_mb(pids), 1), None, None, 0, 0, 0, 0)
    row.sfu_cpu_per_stream = round(100 * sfu / wall / count, 2)
    row.agent_sfu_ratio = round(cpu / sfu, 2) if sfu else 0.0
    row.pss_mb = round(pss_mb(pids), 1)
    return row


def slope(points: list[tuple[int, float]]) -> float:
    if len(points) < 2:
        return float("nan")
    xs = [float(x) for x, _ in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(y for _, y in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sum(
        (x - mean_x) ** 2 for x in xs)


async def soak(server: LiveKitServer, work: Path, size: str, seconds: float) -> dict[str, Any]:
    output = work / "soak"
    async with running_agent(server, output, work / "soak.log", AGENT_NAME="bench-soak",
                             AUTO_ACTIVATE_RECORDING="true", LOG_LEVEL="WARNING") as agent:
        await create_room(server, "bench-soak", "bench-soak")
        publishers = await start_publishers(server, "bench-soak", 1, size, seconds + 120)
        samples: list[tuple[float, float]] = []
        started = time.monotonic()
        try:
            while (elapsed := time.monotonic() - started) < seconds:
                samples.append((round(elapsed), rss_mb(process_tree([agent.process.pid]))))
                print(f"  {elapsed:6.0f} s  agent RSS {samples[-1][1]:.1f} MB", flush=True)
                await asyncio.sleep(min(30.0, seconds / 20))
        finally:
            await stop(publishers)
        await wait_until(lambda: bool(summaries(output)), 30)
    report = check_recording(next(output.glob(f"*/{SUMMARY_NAME}")).parent)
    steady = [rss for at, rss in samples if at >= seconds / 10]
    return {"seconds": seconds, "rss_mb": samples, "rss_first": samples[0][1],
            "rss_steady_min": min(steady), "rss_steady_max": max(steady),
            "check_ok": report.ok, "check": report.render().splitlines()[-1]}


def print_table(results: Results) -> None:
    print(f"\n{results.size}, agent processes only (worker + recording processes)")
    print(f"{'mode':<5} {'N':>3} {'CPU %/rec':>10} {'SFU %/rec':>9} {'ratio':>5} "
          f"{'RSS MB':>8} {'PSS MB':>8} {'1st seg med/max s':>18} {'lost':>5} "
          f"{'dropped':>7} {'late':>5} "
          f"{'recorded':>8} {'frames min':>10} {'gap max s':>9} {'pkts lost/back':>14} "
          f"{'delay s':>7}")
    for row in results.rows:
        first = (f"{row.first_segment_median}/{row.first_segment_max}"
                 if row.first_segment_median is not None else "-")
        packets = f"{row.packets_lost}/{row.packets_recovered}"
        print(f"{row.mode:<5} {row.publishers:>3} {row.cpu_per_recording:>10.2f} "
              f"{row.sfu_cpu_per_stream:>9.2f} {row.agent_sfu_ratio:>5.2f} "
              f"{row.rss_mb:>8.1f} {row.pss_mb:>8.1f} {first:>18} {row.frames_lost:>5} "
              f"{row.frames_dropped:>7} "
              f"{row.packets_late:>5} {row.recordings:>8} {row.frames_recorded_min:>10.1%} "
              f"{row.longest_gap:>9.3f} {packets:>14} {row.most_delay:>7.2f}")
    for mode, mb in results.memory_per_recording_mb.items():
        print(f"memory per extra recording ({mode}): {mb:.1f} MB")


async def run(arguments: argparse.Namespace) -> int:
    results = Results(arguments.size)
    work = Path(tempfile.mkdtemp(prefix="publisher-hls-bench-"))
    hog = (await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass")
           if arguments.busy else None)
    try:
        with running_server(log_dir=work) as server, contextlib.ExitStack() as stack:
            loss = stack.enter_context(PacketLoss()) if arguments.loss else None
            await _run(arguments, results, work, server, loss)
    finally:
        if hog is not None:
            hog.kill()
            await hog.wait()
    arguments.json.write_text(json.dumps(asdict(results), indent=1) + "\n")
    print(f"\nresults: {arguments.json}  (logs and recordings: {work})")
    return 0


async def _run(arguments: argparse.Namespace, results: Results, work: Path,
               server: LiveKitServer, loss: PacketLoss | None) -> None:
    conditions = ", ".join(filter(None, [
        f"{arguments.loss:g} % loss ({arguments.loss_leg})" if arguments.loss else "",
        "one core kept busy" if arguments.busy else ""])) or "a quiet machine"
    print(f"conditions: {conditions}; publishers: {', '.join(arguments.publisher)}",
          flush=True)
    only = f"udp sport {server.udp_port}" if arguments.loss_leg == "recorder" else ""
    if arguments.soak:
        results.soak = await soak(server, work, arguments.size, arguments.soak)
        print(json.dumps({k: v for k, v in results.soak.items() if k != "rss_mb"}))
        return
    for mode in arguments.modes:
        for count in arguments.publishers:
            print(f"{mode}, {count} publishers, {arguments.seconds:.0f} s ...", flush=True)
            results.rows.append(await measure(server, work, mode, count, arguments.size,
                                              arguments.seconds, loss, arguments.loss, only,
                                              arguments.publisher, arguments.log_level))
        results.memory_per_recording_mb[mode] = round(slope(
            [(r.publishers, r.rss_mb) for r in results.rows if r.mode == mode]), 2)
    print_table(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishers", default="1,4,16,32",
                        help="comma-separated N values (default 1,4,16,32)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per N")
    parser.add_argument("--size", choices=sorted(SIZES), default="720p")
    parser.add_argument("--modes", default="opus,aac", help="opus (passthrough), aac or both")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--soak", type=float, default=0.0, metavar="SECONDS",
                        help="one recording this long, memory sampled, then checked")
    parser.add_argument("--loss", type=float, default=0.0, metavar="PERCENT",
                        help="random UDP loss while measuring (in the test namespace only)")
    parser.add_argument("--loss-leg", choices=("both", "recorder"), default="both",
                        help="both ways on every leg, or only what the SFU sends")
    parser.add_argument("--publisher", default="sdk",
                        help="sdk (default), chromium-vp8, chromium-h264, or several "
                             "comma-separated, taken in turn")
    parser.add_argument("--busy", action="store_true",
                        help="keep one core busy with another process for the whole run")
    parser.add_argument("--log-level", default="WARNING",
                        help="the agent's LOG_LEVEL (its log is kept with the recordings)")
    arguments = parser.parse_args(argv)
    arguments.publishers = [int(n) for n in arguments.publishers.split(",")]
    arguments.modes = arguments.modes.split(",")
    arguments.publisher = tuple(arguments.publisher.split(","))
    unknown = set(arguments.publisher) - {"sdk", "chromium-vp8", "chromium-h264"}
    if unknown or (len(arguments.publisher) > 1 and "sdk" in arguments.publisher):
        parser.error(f"--publisher: sdk alone, or chromium-vp8/chromium-h264, not {unknown}")
    return asyncio.run(run(arguments))


if __name__ == "__main__":
    sys.exit(main())
