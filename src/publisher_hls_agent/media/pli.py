"""When a keyframe request (an RTCP PLI) may go to LiveKit's SFU. Pure.

Two rules of the SFU shape it (``pkg/sfu``):

- its receiver passes at most one PLI a layer to the publisher every 0.5 s for the
  lowest (or only) layer and every 1 s for the others (``PLIThrottleConfig``);
- after each PLI a subscriber sends, throttled or not, it ignores that subscriber's
  NACKs until it forwards a keyframe (``downtrack.go``: ``FlagStopRTXOnPLI``).

So a PLI soon after one that was answered is worse than none: the publisher never
hears of it, and loss recovery stops until some other keyframe comes. But a PLI that
brought no keyframe at all (it, or the SFU's to the publisher, was lost: one in ten at
5 % loss both ways) is sent again after ``RETRY``, not after the throttle. NACKs stop
with the first PLI the SFU hears, so waiting only makes the freeze longer, and a
repeated PLI the SFU throttles costs nothing. The one hazard is a repeat that arrives
after the SFU forwarded the keyframe but before that keyframe's first packet reached
us: a window of one one-way trip, at the end of a wait of ``RETRY``.

Nobody may ask again in that time (the frames after a loss are simply dropped), so the
receiver sends what is due itself (``due``), as packets come:

- it repeats an unanswered PLI, as libwebrtc's receiver asks every 200 ms while it
  waits for a keyframe; ``MAX_RETRIES`` times, so that a publisher that never answers
  does not stop loss recovery for good (every PLI stops it until a keyframe): past
  them, whoever wants the keyframe asks again;
- a PLI asked for within the throttle (``defer``: the keyframe that just came was
  broken by a packet lost for good, say) goes as soon as the throttle allows, not
  when somebody happens to ask next (a second later, measured).
"""

from __future__ import annotations

# After a PLI, how long its keyframe's first packet may take before the PLI counts
# as lost: a round trip, a frame interval of the publisher's camera and the encoding
# of a keyframe, with room to spare.
RETRY = 0.25
MAX_RETRIES = 3  # the receiver's own repeats of one unanswered PLI
# The SFU's throttle, and a margin for the PLIs' own travel and the two clocks.
THROTTLE_SINGLE_STREAM = 0.6
THROTTLE_SIMULCAST = 1.0


class PliPacing:
    """One track's PLIs: ``may_send`` before each (``defer`` if it may not), ``sent``
    after, ``due`` as packets come, and ``keyframe_arrived`` when a packet starting a
    keyframe comes."""

    __slots__ = ("_retries", "_sent_at", "awaiting", "deferred", "throttle")

    def __init__(self, *, simulcast: bool = True) -> None:
        self.throttle = THROTTLE_SIMULCAST if simulcast else THROTTLE_SINGLE_STREAM
        self._sent_at: float | None = None
        self._retries = 0  # repeats of the unanswered PLI so far
        # A PLI went out and no keyframe has come since; one was asked for within the
        # throttle (plain attributes: the tap reads them for every packet).
        self.awaiting = False
        self.deferred = False

    def may_send(self, now: float) -> bool:
        if self._sent_at is None:
            return True
        since = now - self._sent_at
        return since >= self.throttle or (self.awaiting and since >= RETRY)

    def defer(self) -> None:
        """A PLI was wanted and ``may_send`` said no: unless one is awaited, it is
        ``due`` once the throttle allows."""
        if not self.awaiting:
            self.deferred = True

    def due(self, now: float) -> bool:
        """Whether the receiver should send a PLI now, unasked: an unanswered one
        again, or a deferred one."""
        if self._sent_at is None:
            return self.deferred
        since = now - self._sent_at
        if self.awaiting:
            return self._retries < MAX_RETRIES and since >= RETRY
        return self.deferred and since >= self.throttle

    def sent(self, now: float) -> None:
        self._retries = self._retries + 1 if self.awaiting else 0
        self._sent_at = now
        self.awaiting = True
        self.deferred = False

    def keyframe_arrived(self) -> None:
        self.awaiting = self.deferred = False
