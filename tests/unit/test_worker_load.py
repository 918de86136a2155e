"""The worker's load: measured CPU plus what new jobs will cost, by their codec."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from publisher_hls_agent.media.codecs import RecordingFormat
from publisher_hls_agent.worker import load
from publisher_hls_agent.worker.load import (
    PASSTHROUGH_JOB,
    RAMP,
    TRANSCODED_JOB,
    LoadEstimate,
    TreeCpu,
    cpu_seconds_by_pid,
    expected_cost,
    process_tree,
)

pytestmark = pytest.mark.unit

TS_PASSTHROUGH = RecordingFormat.for_container("ts").passthrough_video


def test_the_load_is_the_measured_cores_over_the_last_seconds() -> None:
    estimate = LoadEstimate(cores=2)
    assert estimate.load(0.0) == 0.0
    for second in range(20):  # one core busy, steadily
        estimate.sample(cpu_seconds=float(second), now=float(second))
    assert estimate.measured() == pytest.approx(1.0)
    assert estimate.load(19.0) == pytest.approx(0.5)
    for second in range(20, 30):  # then idle: the window forgets the busy past
        estimate.sample(cpu_seconds=19.0, now=float(second))
    assert estimate.load(29.0) == pytest.approx(0.0)


def test_a_new_job_counts_by_its_expected_cost_until_measured() -> None:
    estimate = LoadEstimate(cores=2)
    estimate.reserve("AJ_1", TRANSCODED_JOB, now=0.0)
    assert estimate.load(1.0) == pytest.approx(TRANSCODED_JOB / 2)
    assert estimate.load(RAMP + 1) == 0.0  # by then the measurement has it
    estimate.reserve("AJ_2", TRANSCODED_JOB, now=100.0)
    estimate.release("AJ_2")
    assert estimate.load(101.0) == 0.0


def test_admission_keeps_the_load_under_the_threshold() -> None:
    estimate = LoadEstimate(cores=2)
    for second in range(10):
        estimate.sample(cpu_seconds=second * 1.3, now=float(second))  # 1.3 cores in use
    assert estimate.admits(PASSTHROUGH_JOB, threshold=0.75, now=9.0)
    assert not estimate.admits(TRANSCODED_JOB, threshold=0.75, now=9.0)
    estimate.reserve("AJ_1", PASSTHROUGH_JOB, now=9.0)
    assert estimate.load(9.0) == pytest.approx((1.3 + PASSTHROUGH_JOB) / 2)


def test_a_job_costs_by_the_video_it_must_transcode() -> None:
    assert expected_cost(["video/h264"], TS_PASSTHROUGH) == PASSTHROUGH_JOB
    assert expected_cost(["video/vp8"], TS_PASSTHROUGH) == TRANSCODED_JOB
    assert expected_cost(["video/h264", "video/vp8"], TS_PASSTHROUGH) == TRANSCODED_JOB
    assert expected_cost([], TS_PASSTHROUGH) == TRANSCODED_JOB  # not published yet: VP8?


def test_the_cpu_of_processes_is_read_from_proc() -> None:
    before = cpu_seconds_by_pid([os.getpid()])[os.getpid()]
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert cpu_seconds_by_pid([os.getpid()])[os.getpid()] - before >= 0.2
    assert cpu_seconds_by_pid([2**22 + 1]) == {}  # no such process


@pytest.mark.parametrize("listed", [True, False], ids=["children files", "a scan"])
def test_the_tree_holds_the_childrens_children(
        listed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recording process's transcoders are its children: found from the kernel's
    lists of each thread's children, or by a scan of /proc where it has none."""
    monkeypatch.setattr(load, "_CHILDREN_LISTED", listed and load._CHILDREN_LISTED)
    with subprocess.Popen(["sh", "-c", "sleep 30 & wait"]) as shell:
        deadline = time.monotonic() + 10
        while len(tree := process_tree([shell.pid])) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        shell.kill()
    assert tree[0] == shell.pid and len(tree) == 2
    assert os.getpid() not in process_tree([shell.pid])


def test_a_process_that_ends_keeps_the_cpu_it_used() -> None:
    cpu = TreeCpu()
    assert cpu.read({1: 5.0, 2: 1.0}) == 6.0
    assert cpu.read({1: 6.0, 2: 3.0}) == 9.0
    assert cpu.read({1: 6.5}) == 9.5  # 2 ended: the counter never goes back
    assert cpu.read({1: 7.0, 3: 0.25}) == 10.25  # 3 began
