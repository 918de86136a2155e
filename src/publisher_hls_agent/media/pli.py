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
"""

from __future__ import annotations

# After a PLI, how long its keyframe's first packet may take before the PLI counts
# as lost: a round trip, a frame interval of the publisher's camera and the encoding
# of a keyframe, with room to spare.
RETRY = 0.25
# The SFU's throttle, and a margin for the PLIs' own travel and the two clocks.
THROTTLE_SINGLE_STREAM = 0.6
THROTTLE_SIMULCAST = 1.0


class PliPacing:
    """One track's PLIs: ``may_send`` before each, ``sent`` after, and
    ``keyframe_arrived`` when a packet starting a keyframe comes."""

    __slots__ = ("_sent_at", "awaiting", "throttle")

    def __init__(self, *, simulcast: bool = True) -> None:
        self.throttle = THROTTLE_SIMULCAST if simulcast else THROTTLE_SINGLE_STREAM
        self._sent_at: float | None = None
        # A PLI went out and no keyframe has come since (a plain attribute: the tap
        # reads it for every packet).
        self.awaiting = False

    def may_send(self, now: float) -> bool:
        if self._sent_at is None:
            return True
        since = now - self._sent_at
        return since >= self.throttle or (self.awaiting and since >= RETRY)

    def sent(self, now: float) -> None:
        self._sent_at = now
        self.awaiting = True

    def keyframe_arrived(self) -> None:
        self.awaiting = False
