"""The recording's lifecycle, with its legal transitions written down."""

from __future__ import annotations

import enum

from ..errors import IllegalTransition


class State(enum.Enum):
    CONNECTING = "connecting"  # joining the room, no media yet
    BUFFERING = "buffering"  # media arriving, waiting for a keyframe with SPS/PPS
    HANDSHAKE_READY = "handshake_ready"  # a decodable start point is buffered
    RECORDING_PENDING = "recording_pending"  # activated: starts at the next keyframe
    RECORDING = "recording"
    FINALIZING = "finalizing"
    DONE = "done"


_ALLOWED: dict[State, frozenset[State]] = {
    State.CONNECTING: frozenset({State.BUFFERING, State.FINALIZING}),
    State.BUFFERING: frozenset({State.HANDSHAKE_READY, State.RECORDING_PENDING,
                                State.FINALIZING}),
    State.HANDSHAKE_READY: frozenset({State.RECORDING_PENDING, State.FINALIZING}),
    State.RECORDING_PENDING: frozenset({State.RECORDING, State.FINALIZING}),
    State.RECORDING: frozenset({State.FINALIZING}),
    State.FINALIZING: frozenset({State.DONE}),
    State.DONE: frozenset(),
}


class Lifecycle:
    def __init__(self) -> None:
        self.state = State.CONNECTING

    def to(self, new: State) -> None:
        if new not in _ALLOWED[self.state]:
            raise IllegalTransition(f"{self.state.value} -> {new.value}")
        self.state = new
