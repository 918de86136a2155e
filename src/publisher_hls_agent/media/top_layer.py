"""A simulcast track's recording begins on its top layer. Pure.

The SFU starts a new subscriber on whichever layer has a keyframe first (usually the
lowest, the smallest and quickest to come) and moves it up when the top layer's next
keyframe arrives, which the SFU asks the publisher for itself. Recorded as it comes,
segment 0 would be a 320x180 picture (passed through) or one scaled up from it
(transcoded). So a track's frames are held back until a keyframe as large as the
published picture, for at most ``TOP_LAYER_WAIT`` after the first keyframe; past that
(a publisher whose uplink or CPU keeps its top layer smaller, or down), the next
keyframe of any size begins it. Only the start: a layer change later in the recording
is the writer's (a new SPS is a new stream), never a reason to drop frames.
"""

from __future__ import annotations

TOP_LAYER_WAIT = 2.0  # seconds after the first keyframe
ASK_EVERY = 1.0  # seconds between keyframe requests while no keyframe has come at all


class TopLayerStart:
    def __init__(self, published_size: tuple[int, int], wait: float = TOP_LAYER_WAIT) -> None:
        """``published_size``: the top layer's (0, 0) when the room does not say: then
        the first keyframe begins it."""
        self._area = published_size[0] * published_size[1]
        self._wait = wait
        self._first_keyframe: float | None = None  # arrival
        self.started = self._area == 0
        self.on_top = True  # False: begun below the top layer, the wait over
        self.held_back = 0  # frames not let through before the start
        # Set when the reader should ask the publisher for a keyframe, which it does and
        # clears: every ``ASK_EVERY`` while only delta frames come (a subscription joined
        # mid-picture-group, whose keyframe the SFU's own request may not bring: VP9 and
        # VP8 encoders send no periodic ones), and once the wait is over with no
        # top-layer keyframe (the SFU, switching no more, will not ask for any layer).
        self.keyframe_wanted = False
        self._asked = False
        self._asked_at: float | None = None  # arrival, while no keyframe has come

    def admits(self, keyframe: bool, size: tuple[int, int] | None, arrival: float) -> bool:
        """Whether this frame goes on (``size``: a keyframe's picture size, None when
        the codec cannot say, which lets it through)."""
        if self.started:
            return True
        if keyframe and self._first_keyframe is None:
            self._first_keyframe = arrival
        if self._first_keyframe is None and (
                self._asked_at is None or arrival - self._asked_at >= ASK_EVERY):
            self.keyframe_wanted, self._asked_at = True, arrival
        waited_out = (self._first_keyframe is not None
                      and arrival - self._first_keyframe >= self._wait)
        on_top = size is None or size[0] * size[1] >= self._area
        if keyframe and (on_top or waited_out):
            self.started, self.on_top = True, on_top
            return True
        if waited_out and not self._asked:
            self.keyframe_wanted = self._asked = True
        self.held_back += 1
        return False
