"""The agent worker protocol's messages and the job metadata, without a server."""

import pytest
from livekit.protocol import agent, models

from publisher_hls_agent.worker import protocol

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("url", "expected"), [
    ("ws://127.0.0.1:7880", "ws://127.0.0.1:7880/agent"),
    ("wss://lk.example.com/", "wss://lk.example.com/agent"),
    ("https://lk.example.com/base", "wss://lk.example.com/base/agent"),
    ("http://localhost:7880", "ws://localhost:7880/agent"),
])
def test_agent_url(url: str, expected: str) -> None:
    assert protocol.agent_url(url) == expected


def test_registration_is_a_publisher_worker_that_may_answer_rpc() -> None:
    register = protocol.register_request("publisher-hls-recorder").register
    assert register.type == agent.JobType.JT_PUBLISHER
    assert register.agent_name == "publisher-hls-recorder"
    permissions = register.allowed_permissions
    assert permissions.can_subscribe and permissions.can_publish_data
    assert not permissions.can_publish and permissions.agent


def test_load_and_fullness() -> None:
    idle = protocol.worker_status(0, 0.0, full=False).update_worker
    assert (idle.status, idle.load, idle.job_count) == (agent.WorkerStatus.WS_AVAILABLE, 0, 0)
    half = protocol.worker_status(2, 0.5, full=False).update_worker
    assert half.load == pytest.approx(0.5) and half.status == agent.WorkerStatus.WS_AVAILABLE
    full = protocol.worker_status(4, 1.7, full=True).update_worker
    assert full.status == agent.WorkerStatus.WS_FULL and full.load == 1.0
    draining = protocol.worker_status(0, 0.0, full=False, draining=True).update_worker
    assert draining.status == agent.WorkerStatus.WS_FULL and draining.draining


def test_availability_answer_names_the_recorder_participant() -> None:
    job = agent.Job(id="AJ_1", participant=models.ParticipantInfo(identity="alice"))
    answer = protocol.availability(job, available=True,
                                   identity=protocol.agent_identity("rec", "alice"),
                                   name="HLS recorder").availability
    assert (answer.job_id, answer.available, answer.participant_identity) == \
        ("AJ_1", True, "rec-alice")


def test_agent_identity_stays_short_and_distinct() -> None:
    long_a, long_b = "a" * 300 + "x", "a" * 300 + "y"
    first = protocol.agent_identity("rec", long_a)
    second = protocol.agent_identity("rec", long_b)
    assert len(first) <= protocol.MAX_IDENTITY and len(second) <= protocol.MAX_IDENTITY
    assert first != second and first.startswith("rec-aaaa")


@pytest.mark.parametrize(("metadata", "audio", "video", "warned"), [
    ("", True, True, False),
    ('{"record_audio": false}', False, True, False),
    ('{"record_video": false, "extra": [1, 2]}', True, False, False),
    ('{"record_audio": true, "record_video": true}', True, True, False),
    ("{not json", True, True, True),
    ("[1, 2]", True, True, True),
    ('{"record_audio": "no"}', True, True, True),
    ('{"record_audio": 0}', True, True, True),
    ('{"record_audio": false, "record_video": false}', True, True, True),
])
def test_job_metadata(metadata: str, audio: bool, video: bool, warned: bool) -> None:
    options, warning = protocol.parse_job_metadata(metadata)
    assert (options.record_audio, options.record_video) == (audio, video)
    assert (warning is not None) == warned
