"""A recording as LiveKit Egress describes one: the ``EgressInfo`` of a participant
egress with HLS segments, and the webhook body around it. Pure.

A backend that already takes LiveKit's webhooks (``egress_started``, ``egress_updated``,
``egress_ended``) reads ours unchanged: the body is the protobuf JSON of
``livekit.WebhookEvent`` and it is signed as LiveKit signs its own (``sender.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from google.protobuf.json_format import MessageToJson
from livekit.protocol import egress, webhook

STARTED, UPDATED, ENDED = "egress_started", "egress_updated", "egress_ended"
ACTIVE, ENDING = egress.EgressStatus.EGRESS_ACTIVE, egress.EgressStatus.EGRESS_ENDING
COMPLETE, FAILED = egress.EgressStatus.EGRESS_COMPLETE, egress.EgressStatus.EGRESS_FAILED
SECOND = 1_000_000_000  # EgressInfo counts time in nanoseconds


def egress_id(folder_name: str) -> str:
    """Stable for a recording (its folder's name is unique in OUTPUT_DIR), whoever
    sends: the recording process, or the worker that closes it after a crash."""
    return "EG_" + hashlib.sha256(folder_name.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RecordingState:
    """What the events say of a recording at one moment."""

    folder_name: str
    room_name: str
    room_id: str  # the room's sid, "" when not known
    participant: str
    status: int  # egress.EgressStatus
    started_at: float  # Unix seconds
    updated_at: float
    ended_at: float | None = None
    playlist_location: str = ""  # s3://bucket/key once uploaded, else the local path
    duration: float = 0.0  # seconds of media
    size: int = 0  # bytes of segments
    segment_count: int = 0
    error: str = ""


def egress_info(state: RecordingState) -> egress.EgressInfo:
    started, updated = int(state.started_at * SECOND), int(state.updated_at * SECOND)
    ended = int(state.ended_at * SECOND) if state.ended_at is not None else 0
    info = egress.EgressInfo(
        egress_id=egress_id(state.folder_name), room_id=state.room_id,
        room_name=state.room_name, status=state.status,  # type: ignore[arg-type]
        started_at=started, updated_at=updated, ended_at=ended, error=state.error,
        participant=egress.ParticipantEgressRequest(room_name=state.room_name,
                                                    identity=state.participant))
    info.segment_results.append(egress.SegmentsInfo(
        playlist_name=state.playlist_location.rsplit("/", 1)[-1],
        playlist_location=state.playlist_location, duration=int(state.duration * SECOND),
        size=state.size, segment_count=state.segment_count, started_at=started,
        ended_at=ended))
    return info


def webhook_body(event: str, state: RecordingState, *, event_id: str, created_at: int) -> str:
    """The JSON a receiver gets (``created_at``: Unix seconds, as LiveKit sends it)."""
    message = webhook.WebhookEvent(event=event, egress_info=egress_info(state), id=event_id,
                                   created_at=created_at)
    return MessageToJson(message, indent=None)
