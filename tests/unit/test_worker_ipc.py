"""The messages between the worker and its recording processes, as the pipe carries
them (pickled), and the check of what comes off it."""

import pickle
from pathlib import Path

import pytest

from publisher_hls_agent.recorder.options import RecorderOptions
from publisher_hls_agent.worker import ipc
from publisher_hls_agent.worker.ipc import (
    Command,
    CommandOp,
    Finished,
    Outcome,
    Ping,
    Pong,
    Progress,
    Recorded,
    StartJob,
)

pytestmark = pytest.mark.unit

TO_PROCESS: list[object] = [
    StartJob("job-1", "ws://127.0.0.1:7880", "token", "room", "alice",
             RecorderOptions(Path("/recordings"))),
    Command(CommandOp.ACTIVATE, "job-1"),
    Command(CommandOp.STOP_RECORDING, "job-1", "stopped by request"),
    Command(CommandOp.END, "job-1", "job terminated by the server"),
    Command(CommandOp.SHUTDOWN),
    Ping(7),
]
FROM_PROCESS: list[object] = [
    Progress({"job-1": {"state": "recording", "segments": 3}}, {"timeout": 1}),
    Recorded("job-1", {"folder": "room_alice_x", "segments": []}),
    Finished("job-1", Outcome.SUCCESS),
    Finished.failed("job-1", "recording process 12 stopped answering"),
    Pong(7),
]


@pytest.mark.parametrize("message", TO_PROCESS + FROM_PROCESS, ids=repr)
def test_every_message_survives_the_pipe(message: object) -> None:
    assert pickle.loads(pickle.dumps(message)) == message


@pytest.mark.parametrize("message", TO_PROCESS, ids=repr)
def test_the_workers_messages_are_taken_by_the_process_only(message: object) -> None:
    assert ipc.to_process(message) is message
    assert ipc.from_process(message) is None


@pytest.mark.parametrize("message", FROM_PROCESS, ids=repr)
def test_the_processes_messages_are_taken_by_the_worker_only(message: object) -> None:
    assert ipc.from_process(message) is message
    assert ipc.to_process(message) is None


@pytest.mark.parametrize("stranger", [
    ("finished", "job-1", False, "recording process died"),  # the old tuples
    ("progress", {}, {}),
    "shutdown",
    None,
])
def test_anything_else_is_refused(stranger: object) -> None:
    assert ipc.to_process(stranger) is None
    assert ipc.from_process(stranger) is None


def test_messages_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Ping(1).seq = 2  # type: ignore[misc]


def test_a_failure_says_why_and_the_outcome_names_the_metric_label() -> None:
    failed = Finished.failed("job-1", "recording process died")
    assert (failed.outcome, failed.error) == (Outcome.FAILED, "recording process died")
    assert [outcome.value for outcome in Outcome] == ["success", "failed"]
