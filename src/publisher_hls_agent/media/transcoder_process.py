"""A ``VideoTranscoder`` in a process of its own, behind a pipe.

On a thread of the recording process, x264 and libvpx let go of the GIL, but every
return from them takes it back, and so does the event loop after each of its system
calls (a recvfrom per datagram). On a machine short of CPU each hand-over waits for a
starved thread to be scheduled: with two Chromium VP8 publishers transcoded beside two
more on a 2-core machine with one core kept busy, py-spy put 70 % of the loop
thread's samples (idle included) on a return from the AAC encoder and on a property
read, where a thread takes the GIL back, and its pings went 2-5 s unanswered. In a
process of its own the transcoder shares no lock with the loop (which the machine may
still starve: ``worker/liveness.py``); a crash in FFmpeg (a crafted frame) ends only
that process, and the next keyframe starts a new one.

The wire: each request is a header (flags, frame length, RTP timestamp) and the frame;
each answer a header (status, count) and either ``count`` pictures (header and data) or
an error message. One request, one answer, in turn: the calling thread blocks on the
pipe without the GIL. The child ends when its input closes, so it never outlives the
recording process, even a killed one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import struct
import subprocess
import sys
from typing import IO

from ..errors import TranscodeError
from .transcode import EncodedPicture, EncoderSettings, VideoTranscoder

logger = logging.getLogger(__name__)

_REQUEST = struct.Struct("!BIq")  # flags, frame length, RTP timestamp (unwrapped)
_FORCE_KEYFRAME = 1
_ANSWER = struct.Struct("!BI")  # status, pictures (OK) or message length (failed)
_OK, _FAILED = 0, 1
_PICTURE = struct.Struct("!IqBB")  # length, RTP timestamp, keyframe, parameter sets
# Under CPU contention the transcoder gives way to the recording loops and the SFU: a
# transcoder behind loses nothing (its frames wait), a starved loop loses packets.
NICENESS = 5
CLOSE_WAIT = 5.0  # seconds for the child to finish after its input closed


class TranscoderProcess:
    """The calls of ``VideoTranscoder`` (``transcode``, ``force_keyframe``, ``close``),
    each answered by a child process. Called from one thread; ``force_keyframe`` from
    any (the request goes with the next frame)."""

    def __init__(self, source_codec: str, size: tuple[int, int] | None,
                 settings: EncoderSettings) -> None:
        self.source_codec = source_codec
        self._argv = [sys.executable, "-m", __name__, source_codec,
                      *(str(side) for side in (size or (0, 0))),
                      settings.preset, str(settings.crf), str(settings.threads)]
        self._child: subprocess.Popen[bytes] | None = None
        # Asked (by the loop) and passed on (by the thread): counted, not a flag both
        # set and clear, so that a request made while a frame is sent is never lost.
        self._keyframes_asked = self._keyframes_sent = 0
        self.restarts = 0  # children started after one ended

    def force_keyframe(self) -> None:
        self._keyframes_asked += 1

    def transcode(self, frame: bytes, rtp_timestamp: int) -> list[EncodedPicture]:
        child = self._running_child()
        asked = self._keyframes_asked
        flags = _FORCE_KEYFRAME if asked != self._keyframes_sent else 0
        self._keyframes_sent = asked
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(_REQUEST.pack(flags, len(frame), rtp_timestamp) + frame)
            child.stdin.flush()
            status, count = _ANSWER.unpack(_read_exactly(child.stdout, _ANSWER.size))
            if status != _OK:
                raise TranscodeError(_read_exactly(child.stdout, count).decode(
                    "utf-8", "replace"))
            return [_read_picture(child.stdout) for _ in range(count)]
        except (OSError, EOFError) as exc:
            self._end_child(ended_itself=True)
            raise TranscodeError(f"the transcoding process ended ({exc or 'no answer'}); "
                                 "a new one starts at the next frame") from exc

    def close(self) -> None:
        self._end_child(ended_itself=False)

    def _running_child(self) -> subprocess.Popen[bytes]:
        if self._child is None:
            self._child = subprocess.Popen(
                self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                # Its own session: a Ctrl-C or SIGTERM to the agent's process group is
                # for the agent, which finishes its recordings and closes this pipe.
                start_new_session=True)
        return self._child

    def _end_child(self, *, ended_itself: bool) -> None:
        """Close the pipe and reap the child; ``ended_itself``: it broke the pipe (a
        crash, a kill), where polling it could still find it running an instant after."""
        child, self._child = self._child, None
        if child is None:
            return
        for stream in (child.stdin, child.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        try:
            child.wait(CLOSE_WAIT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if ended_itself:
            self.restarts += 1
            logger.warning("%s transcoding process %d ended (exit code %s)",
                           self.source_codec, child.pid, child.returncode)


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError(f"{len(data)} of {size} bytes")
    return data


def _read_picture(stream: IO[bytes]) -> EncodedPicture:
    length, rtp_timestamp, keyframe, parameter_sets = _PICTURE.unpack(
        _read_exactly(stream, _PICTURE.size))
    return EncodedPicture(_read_exactly(stream, length), rtp_timestamp, bool(keyframe),
                          bool(parameter_sets))


# --- the child ------------------------------------------------------------------------

def serve(transcoder: VideoTranscoder, requests: IO[bytes], answers: IO[bytes]) -> None:
    """Answer requests until the input closes."""
    while header := requests.read(_REQUEST.size):
        flags, length, rtp_timestamp = _REQUEST.unpack(header)
        frame = _read_exactly(requests, length)
        if flags & _FORCE_KEYFRAME:
            transcoder.force_keyframe()
        try:
            pictures = transcoder.transcode(frame, rtp_timestamp)
        except Exception as exc:
            message = (str(exc) if isinstance(exc, TranscodeError) else repr(exc)).encode()
            answers.write(_ANSWER.pack(_FAILED, len(message)) + message)
        else:
            answers.write(_ANSWER.pack(_OK, len(pictures)) + b"".join(
                _PICTURE.pack(len(p.data), p.rtp_timestamp, p.keyframe, p.has_parameter_sets)
                + p.data for p in pictures))
        answers.flush()


def main(argv: list[str]) -> int:
    codec, width, height, preset, crf, threads = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent says when: by closing
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    size = (int(width), int(height)) if int(width) and int(height) else None
    transcoder = VideoTranscoder(codec, size, EncoderSettings(preset, int(crf), int(threads)))
    with contextlib.suppress(OSError, EOFError):  # the parent is gone: nobody to answer
        serve(transcoder, sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
