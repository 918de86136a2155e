"""What is kept before recording starts, so that segment 0 starts on a keyframe with its
audio: the video since the latest keyframe and the audio of that span. Bounded."""

from __future__ import annotations

from collections import deque

from ..media.units import AccessUnit, AudioPacket

MAX_VIDEO_UNITS = 600  # 20 s at 30 fps: a GOP longer than that is not kept whole
AUDIO_MARGIN = 1.0  # seconds of audio kept from before the buffered keyframe
MAX_AUDIO_PACKETS = 1500  # 30 s of 20 ms packets


class PreBuffer:
    def __init__(self) -> None:
        self.video: deque[AccessUnit] = deque(maxlen=MAX_VIDEO_UNITS)
        self.audio: deque[AudioPacket] = deque(maxlen=MAX_AUDIO_PACKETS)
        self.holding = False  # keep everything from the buffered keyframe on

    def hold(self) -> None:
        """The recording will start at the buffered keyframe: stop dropping anything."""
        self.holding = True

    @property
    def keyframe(self) -> AccessUnit | None:
        """The buffered keyframe (the first unit) if the GOP is held whole."""
        return self.video[0] if self.video and self.video[0].starts_stream else None

    def add_video(self, unit: AccessUnit) -> None:
        if self.holding:
            self.video.append(unit)
            return
        if unit.starts_stream:
            self.video.clear()
            self._trim_audio(unit.arrival - AUDIO_MARGIN)
        elif self.video and len(self.video) == MAX_VIDEO_UNITS:
            self.video.clear()  # the GOP no longer fits: its keyframe would be evicted
            return
        if self.video or unit.starts_stream:
            self.video.append(unit)

    def add_audio(self, packet: AudioPacket) -> None:
        self.audio.append(packet)
        if self.keyframe is None and not self.holding:
            self._trim_audio(packet.arrival - AUDIO_MARGIN)

    def _trim_audio(self, before: float) -> None:
        while self.audio and self.audio[0].arrival < before:
            self.audio.popleft()
