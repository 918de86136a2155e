"""The agent worker protocol's messages, built and read without any I/O.

LiveKit's ``/agent`` websocket carries ``WorkerMessage`` (ours) and ``ServerMessage``
(the server's) protobufs. The server asks a worker whether it takes a job
(``availability``, answered within 10 s), then assigns it with a room token for the
identity the worker chose; the worker reports the job's status and its own load, a
number from 0 to 1 by which the server weighs workers (``WS_FULL`` takes it out).
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from dataclasses import dataclass

from livekit.protocol import agent, models

from .. import __version__

PING_INTERVAL = 10.0  # our pings; the server itself closes sockets it has not heard from
MAX_IDENTITY = 128


def agent_url(livekit_url: str) -> str:
    """``ws(s)://host[:port]/agent`` for a ``ws``/``wss``/``http``/``https`` server URL."""
    parts = urllib.parse.urlsplit(livekit_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urllib.parse.urlunsplit((scheme, parts.netloc,
                                    parts.path.rstrip("/") + "/agent", "", ""))


def register_request(agent_name: str) -> agent.WorkerMessage:
    return agent.WorkerMessage(register=agent.RegisterWorkerRequest(
        type=agent.JobType.JT_PUBLISHER,
        agent_name=agent_name,
        version=__version__,
        # Ours: subscribe (to record) and publish data (to answer RPC calls); no media.
        allowed_permissions=models.ParticipantPermission(
            can_subscribe=True, can_publish=False, can_publish_data=True, agent=True),
    ))


def agent_identity(agent_name: str, publisher: str) -> str:
    """The identity the recorder of ``publisher`` joins with: predictable, so that room
    participants know whom to call for ``activate_recording``; short enough for any
    identity limit (a long one keeps its start and gets a hash of the whole)."""
    identity = f"{agent_name}-{publisher}"
    if len(identity) <= MAX_IDENTITY:
        return identity
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return f"{identity[:MAX_IDENTITY - 17]}-{digest}"


def availability(job: agent.Job, *, available: bool, identity: str = "",
                 name: str = "") -> agent.WorkerMessage:
    return agent.WorkerMessage(availability=agent.AvailabilityResponse(
        job_id=job.id, available=available, participant_identity=identity,
        participant_name=name))


def job_status(job_id: str, status: agent.JobStatus,
               error: str = "") -> agent.WorkerMessage:
    return agent.WorkerMessage(update_job=agent.UpdateJobStatus(
        job_id=job_id, status=status, error=error))


def worker_status(active: int, load: float, *, full: bool,
                  draining: bool = False) -> agent.WorkerMessage:
    """``load``: the share of the worker's capacity in use (``worker/load.py``)."""
    full = full or draining
    return agent.WorkerMessage(update_worker=agent.UpdateWorkerStatus(
        status=agent.WorkerStatus.WS_FULL if full else agent.WorkerStatus.WS_AVAILABLE,
        load=min(1.0, max(0.0, load)), job_count=active, draining=draining))


def ping(timestamp_ms: int) -> agent.WorkerMessage:
    return agent.WorkerMessage(ping=agent.WorkerPing(timestamp=timestamp_ms))


@dataclass(frozen=True)
class JobOptions:
    """What a job's metadata asks of its recording."""

    record_audio: bool = True
    record_video: bool = True

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(kind for kind, wanted in
                         (("audio", self.record_audio), ("video", self.record_video))
                         if wanted)


def parse_job_metadata(metadata: str) -> tuple[JobOptions, str | None]:
    """The job's options and, when the metadata was unusable, why (for a warning).

    ``{"record_audio": bool, "record_video": bool}``; unknown keys are ignored; empty
    metadata means both. Invalid JSON, a wrong type, or both kinds off fall back to
    recording both: a recording of nothing is never what anyone meant.
    """
    if not metadata.strip():
        return JobOptions(), None
    try:
        document = json.loads(metadata)
    except ValueError:
        return JobOptions(), "job metadata is not JSON; recording audio and video"
    if not isinstance(document, dict):
        return JobOptions(), "job metadata is not a JSON object; recording audio and video"
    values = {}
    for key in ("record_audio", "record_video"):
        value = document.get(key, True)
        if not isinstance(value, bool):
            return JobOptions(), (f"job metadata {key} must be true or false; "
                                  "recording audio and video")
        values[key] = value
    options = JobOptions(**values)
    if not options.kinds:
        return JobOptions(), "job metadata turns off both audio and video; recording both"
    return options, None
