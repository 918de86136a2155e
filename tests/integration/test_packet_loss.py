"""Recordings under packet loss: real server, real publisher, nftables in the namespace.

The loss is random UDP loss on the namespace's loopback, which every datagram crosses
once: the publisher's leg (publisher -> SFU) and the recorder's (SFU -> recorder), with
their RTCP, lose alike. What the SFU itself never receives (the publisher's libwebrtc
fills its uplink with padding when it probes, and LiveKit's upstream NACK queue holds
100 numbers) is lost to every subscriber; loss on the recorder's leg alone is what the
recorder answers for, so that is where the figures are held tightest.
The publisher is a process of its own, as a real one is: sharing the recorder's event
loop, its sending comes in bursts whenever the recorder works.

Figures are printed (``-s``) and judged in media time, read back from the recording.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from testbed.browser_publisher import browser_publishing
from testbed.frames import VideoFigures, picture_times, video_figures
from testbed.livekit_server import LiveKitServer
from testbed.loss import PacketLoss, loss_available

from publisher_hls_agent.hls.check import check_recording
from publisher_hls_agent.recorder.options import RecorderOptions
from publisher_hls_agent.worker.session import RecordingSession

from .support import publisher_process, record_for, token

# Random loss makes every run a different draw: the same tree gave 100, 83 and 72 % of
# the frames at 5 % both ways, and one freeze in a run or none. A failure is judged on a
# second draw; a recorder that really regressed fails both (figures printed each time).
pytestmark = [pytest.mark.integration, pytest.mark.flaky(reruns=1),
              pytest.mark.skipif(not loss_available(), reason="needs nft in the test namespace")]

FPS = 30


async def record_with_loss(server: LiveKitServer, output: Path, seconds: float, percent: float,
                           *, leg: str = "both", burst_at: float | None = None,
                           keep_opus: bool = False) -> tuple[dict[str, Any], VideoFigures]:
    room = f"loss-{uuid.uuid4().hex[:8]}"
    only = {"both": "", "recorder": f"udp sport {server.udp_port}"}[leg]
    async with publisher_process(server, room, "alice"):  # 1280x720 30 fps 2 Mbit/s
        session = RecordingSession(server.url, token(server, room, "recorder"), room, "alice",
                                   RecorderOptions(output_dir=output, auto_activate=True,
                                                   keep_opus=keep_opus), answer_rpc=False)
        with PacketLoss() as loss:
            loss.set(percent, only)
            task = asyncio.create_task(session.run())
            if burst_at is None:
                await asyncio.sleep(seconds)
            else:
                await asyncio.sleep(burst_at)
                burst_start = time.time()
                await loss.burst(20, 2)
                burst_end = time.time()
                await asyncio.sleep(seconds - burst_at - 2)
            await session.stop()
            summary = await asyncio.wait_for(task, 60)
    assert summary is not None, "nothing was recorded"
    if burst_at is not None:  # where the burst fell on the recording's timeline
        origin = datetime.fromisoformat(summary["started_at"]).timestamp()
        summary["burst"] = (burst_start - origin, burst_end - origin)
    folder = Path(summary["folder"])
    report = check_recording(folder)
    assert report.ok, report.render()
    figures = video_figures(folder, FPS)
    print(f"\n{percent:g} % loss ({leg}{', 2 s burst of 20 %' if burst_at else ''}): "
          f"{figures.render()}; receive {summary['receive']}; frames {summary['frames']}")
    return summary, figures


async def test_loss_on_the_recorders_leg_is_recovered(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    """5 % both ways between the SFU and the recorder: NACKs timed for the SFU bring
    nearly every packet back (the landed tree kept 76 of 214; most frames were lost)."""
    summary, figures = await record_with_loss(livekit_server, tmp_path, 30, 5, leg="recorder")
    receive = summary["receive"]
    assert receive["packets_recovered"] >= 0.95 * (receive["packets_recovered"]
                                                   + receive["packets_lost"])
    # (0.99 and 0.2 s are usual; a PLI that the SFU throttles upstream holds NACKs until
    # the next keyframe, which may cost a freeze)
    assert figures.ratio >= 0.95 and figures.longest_gap <= 1.0, figures.render()
    assert receive["red_recovered"] > 0  # audio: RED copies filled lost packets


# Both ways, what the SFU never received lost is lost to the recorder too (see the
# module): the figures are printed, and the floor is what no working recorder falls to.
# (At 5 %, runs of this tree gave 100, 83 and 72 %: the packets the SFU never had cost
# keyframe round trips, and the one-PLI-a-second spacing can double them; issue 14.)
@pytest.mark.parametrize(("percent", "keep_opus", "least"), [(1, False, 0.9), (5, True, 0.6)])
async def test_random_loss_both_ways_gives_a_valid_recording(
        livekit_server: LiveKitServer, tmp_path: Path, percent: float, keep_opus: bool,
        least: float) -> None:
    summary, figures = await record_with_loss(livekit_server, tmp_path, 30, percent,
                                              keep_opus=keep_opus)
    assert figures.ratio >= least, figures.render()
    assert summary["receive"]["packets_recovered"] > 0


async def test_after_a_burst_the_frame_rate_comes_back_within_a_second(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    """2 s of 20 % loss on top of 1 %, on the recorder's leg: whole before it, and at
    full rate again within 1 s of its end (media time, placed by the recording's own
    start time), judged over the 2 s that follow. Under the 1 % that goes on, a freeze
    is held to the bound of the recorder's-leg test (the SFU stops retransmitting after
    each PLI until it forwards a keyframe, ``FlagStopRTXOnPLI``: a loss in that window
    can cost a keyframe round trip; issue 14). (On the publisher's leg too, libwebrtc's
    bandwidth estimate falls with the burst and then probes back up with padding for
    several seconds, and LiveKit's upstream NACK queue loses packets for every
    subscriber meanwhile: see the module.)"""
    summary, _ = await record_with_loss(livekit_server, tmp_path, 24, 1, leg="recorder",
                                        burst_at=10)
    start, end = summary["burst"]
    times = picture_times(Path(summary["folder"]))
    gaps = [(a, b - a) for a, b in itertools.pairwise(times)]
    print(f"burst at {start:.2f}-{end:.2f} s; gaps over 100 ms: "
          f"{[(round(at, 2), round(gap, 3)) for at, gap in gaps if gap > 0.1]}")
    assert all(gap <= 0.5 for at, gap in gaps if at + gap < start), "a freeze before the burst"
    # Full rate from 1 s after it: the 1 % underneath may still cost a frame now and
    # then (a frame given up leaves a gap of 0.1 s), never a freeze or a slow rate.
    recovered = (end + 1.0, end + 3.0)
    after = [at for at in times if recovered[0] <= at <= recovered[1]]
    assert all(gap <= 0.2 for at, gap in gaps if recovered[0] <= at <= recovered[1]), \
        "a freeze after it"
    assert len(after) >= 0.97 * FPS * (after[-1] - after[0]), "no full rate after it"
    assert all(gap <= 1.0 for at, gap in gaps if at > recovered[1]), "a long freeze later"


@pytest.mark.parametrize("codec", ["h264", "vp8"])
async def test_a_browser_publisher_under_loss_is_recorded_whole(
        livekit_server: LiveKitServer, tmp_path: Path, codec: str) -> None:
    """Chromium (livekit-client, its defaults but for the codec) with 5 % loss on the
    recorder's leg: every recording passes check and keeps its frame rate."""
    room, identity = f"loss-browser-{codec}", f"chromium-{codec}"
    async with browser_publishing(livekit_server.url, token(livekit_server, room, identity),
                                  codec, width=640, height=360, scratch=tmp_path):
        with PacketLoss() as loss:
            loss.set(5, f"udp sport {livekit_server.udp_port}")
            summary = await record_for(livekit_server, room, identity, 12, RecorderOptions(
                output_dir=tmp_path / "out", auto_activate=True, segment_duration=1.0))
    folder = Path(summary["folder"])
    report = check_recording(folder)
    assert report.ok, report.render()
    figures = video_figures(folder, 30)
    print(f"\nChromium {codec}, 5 % loss (recorder): {figures.render()}; "
          f"receive {summary['receive']}; frames {summary['frames']}")
    assert summary["receive"]["packets_recovered"] > 0
    # (the bound of the recorder's-leg test, for the same reason: CI saw 0.7 s once)
    assert figures.ratio >= 0.8 and figures.longest_gap <= 1.0, figures.render()
