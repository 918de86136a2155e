"""When a recording starts, and on what: a pure policy, told what happened and when.

Before activation the recorder keeps a pre-buffer (the video since the latest keyframe
and the audio of that span). Activation asks for a keyframe and the recording starts on
it; if none comes within ``KEYFRAME_WAIT``, it starts on the buffered one instead, so a
publisher with a long keyframe interval that ignores PLIs still gets a recording that
starts on a keyframe, with its audio. With no keyframe buffered either, it asks again
every ``KEYFRAME_WAIT`` until one comes: the request made at subscription can pass before
the receiver listens, and one made before the track's first packet reaches no one.

A video track that gives no usable keyframe at all (a broken or silent camera) is no
reason to record nothing: ``VIDEO_WAIT`` after activation the recording starts with
the audio alone, and the video joins at its first keyframe (after a DISCONTINUITY).

Audio and video are lined up by the RTCP sender reports, which LiveKit sends a
subscriber every 3 s from its joining (``subscriberRTCPWorker``), so the first may come
3 s after a subscription. A recording activated that early holds everything from its
keyframe on and waits for them as long as its first segment can wait
(``report_wait_for``: half a second short of the segment duration, at most
``REPORT_WAIT``); then arrival times line it up, and the recorder moves the audio to
the reports' place once they come. Nothing held is lost. A participant with no video
track starts on its first audio packet.
With auto activation, the recording starts once every expected kind of track is there,
or ``TRACK_WAIT`` after the first one.

The recorder (the shell) calls the event methods with the current time, does what they
return, and calls ``tick`` at ``deadline()``. Nothing here reads a clock or sets a timer.
"""

from __future__ import annotations

import enum

from .state import Lifecycle, State

KEYFRAME_WAIT = 1.0  # after activation, at most, for a fresh keyframe
REPORT_WAIT = 5.0  # after activation, at most, for every track's first sender report
TRACK_WAIT = 3.0  # auto activation waits this long for every expected track
# After activation, at most, for any usable keyframe (the keyframe requests go on
# meanwhile): then the audio starts alone. Past REPORT_WAIT, so a buffered keyframe
# held at KEYFRAME_WAIT has started the recording by then.
VIDEO_WAIT = 6.0


def report_wait_for(segment_duration: float) -> float:
    """How long after activation a start waits for sender reports: the first segment
    ends about a segment duration after it (its keyframe comes at once), so waiting
    longer than this would make it late; at least half a second."""
    return min(REPORT_WAIT, max(0.5, segment_duration - 0.5))


class Do(enum.Enum):
    """What the shell is asked to do, in the order given."""

    REQUEST_KEYFRAME = "ask the publisher for a keyframe"
    HOLD = "keep the pre-buffer whole from its keyframe: the recording starts there"
    HOLD_BUFFERED = "no fresh keyframe came: hold from the buffered one"
    START = "start from what is held"
    START_AUDIO_ONLY = "start on the audio packet just given"
    START_WITHOUT_VIDEO = "no keyframe came: start on the held audio, video joins later"


class _Timer(enum.Enum):
    ACTIVATE = "auto activation, expected tracks or not"
    KEYFRAME = "settle for the buffered keyframe, or ask again"
    REPORTS = "stop waiting for sender reports"
    VIDEO = "start without the video"


class StartPolicy:
    def __init__(self, *, auto_activate: bool = False,
                 expected_kinds: frozenset[str] = frozenset({"audio", "video"}),
                 keyframe_wait: float = KEYFRAME_WAIT, report_wait: float = REPORT_WAIT,
                 track_wait: float = TRACK_WAIT, video_wait: float = VIDEO_WAIT) -> None:
        self.auto_activate = auto_activate
        self.expected_kinds = expected_kinds
        self.keyframe_wait, self.report_wait = keyframe_wait, report_wait
        self.track_wait, self.video_wait = track_wait, video_wait
        self.video_missing: str | None = None  # why the recording started without video
        self._video_waited = False
        self.lifecycle = Lifecycle()
        self.activated_at: float | None = None
        self.holding = False
        self._reports_waited = False
        self._live: dict[str, str] = {}  # track sid -> kind
        self._deadlines: dict[_Timer, float] = {}

    @property
    def state(self) -> State:
        return self.lifecycle.state

    @property
    def pending(self) -> bool:
        return self.state is State.RECORDING_PENDING

    def deadline(self) -> float | None:
        """When ``tick`` is next due, if ever."""
        return min(self._deadlines.values(), default=None)

    # --- events ------------------------------------------------------------------------

    def track_started(self, sid: str, kind: str, now: float) -> list[Do]:
        if self.state in (State.FINALIZING, State.DONE):
            return []
        self._live[sid] = kind
        actions = [Do.REQUEST_KEYFRAME] if kind == "video" else []
        if self.state is State.CONNECTING:
            self.lifecycle.to(State.BUFFERING)
            if self.auto_activate:
                self._deadlines[_Timer.ACTIVATE] = now + self.track_wait
        if self.auto_activate and self.expected_kinds <= set(self._live.values()):
            actions += self.activate(now)
        return actions

    def track_ended(self, sid: str) -> None:
        self._live.pop(sid, None)

    def activate(self, now: float) -> list[Do]:
        if self.state not in (State.BUFFERING, State.HANDSHAKE_READY):
            return []
        self.lifecycle.to(State.RECORDING_PENDING)
        self.activated_at = now
        self._deadlines.pop(_Timer.ACTIVATE, None)
        self._deadlines[_Timer.KEYFRAME] = now + self.keyframe_wait
        self._deadlines[_Timer.REPORTS] = now + self.report_wait
        self._deadlines[_Timer.VIDEO] = now + self.video_wait
        return [Do.REQUEST_KEYFRAME]

    def video(self, *, keyframe: bool, reports_ready: bool) -> list[Do]:
        """A video unit was buffered; ``keyframe``: one with its parameter sets, a start."""
        if keyframe and self.state is State.BUFFERING:
            self.lifecycle.to(State.HANDSHAKE_READY)
        if not self.pending:
            return []
        actions = []
        if keyframe and not self.holding:
            self.holding = True
            actions.append(Do.HOLD)
        return actions + self._maybe_start(reports_ready)

    def audio(self, *, video_expected: bool) -> list[Do]:
        """An audio packet came; with no video track, the recording starts on it, and
        so it does when the video was waited for in vain."""
        if self.pending and not video_expected:
            return self._started([Do.START_AUDIO_ONLY])
        if self.pending and self._video_waited and not self.holding:
            return self._without_video()
        return []

    def tick(self, now: float, *, buffered_keyframe: bool, reports_ready: bool,
             audio_held: bool = False) -> list[Do]:
        actions: list[Do] = []
        for timer in [t for t in _Timer if self._deadlines.get(t, now + 1) <= now]:
            if self._deadlines.pop(timer, None) is None:  # an earlier one started it
                continue
            actions += self._expired(timer, now, buffered_keyframe, reports_ready, audio_held)
        return actions

    def stop(self, *, buffered_keyframe: bool) -> list[Do]:
        """Finalizing: an activated recording that has not begun still writes what it
        holds from a keyframe on (the publisher left while the reports were awaited)."""
        actions: list[Do] = []
        if self.pending and buffered_keyframe:
            actions = [Do.START] if self.holding else [Do.HOLD, Do.START]
            self.holding = True
            self.lifecycle.to(State.RECORDING)
        self._deadlines.clear()
        self.lifecycle.to(State.FINALIZING)
        return actions

    def finished(self) -> None:
        self.lifecycle.to(State.DONE)

    # --- internals ---------------------------------------------------------------------

    def _expired(self, timer: _Timer, now: float, buffered_keyframe: bool,
                 reports_ready: bool, audio_held: bool) -> list[Do]:
        if timer is _Timer.ACTIVATE:
            return self.activate(now)
        if timer is _Timer.REPORTS:
            self._reports_waited = True
            return self._maybe_start(reports_ready)
        if timer is _Timer.VIDEO:
            if not self.pending or self.holding:
                return []
            self._video_waited = True  # the keyframe requests go on meanwhile
            return self._without_video() if audio_held else []  # else the next audio
        if not self.pending or self.holding:  # _Timer.KEYFRAME
            return []
        if buffered_keyframe:
            self.holding = True
            return [Do.HOLD_BUFFERED, *self._maybe_start(reports_ready)]
        self._deadlines[_Timer.KEYFRAME] = now + self.keyframe_wait
        return [Do.REQUEST_KEYFRAME]

    def _maybe_start(self, reports_ready: bool) -> list[Do]:
        """Start once there is a keyframe to start on and a way to line audio up."""
        if self.pending and self.holding and (self._reports_waited or reports_ready):
            return self._started([Do.START])
        return []

    def _without_video(self) -> list[Do]:
        self.video_missing = f"no usable keyframe within {self.video_wait:g} s of activation"
        return self._started([Do.START_WITHOUT_VIDEO])

    def _started(self, actions: list[Do]) -> list[Do]:
        self.lifecycle.to(State.RECORDING)
        self._deadlines.clear()
        return actions
