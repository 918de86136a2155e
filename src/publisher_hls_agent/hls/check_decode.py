"""``check``'s decoding pass: every frame of every segment through FFmpeg's decoders.

The structural rules (``check.py``) read containers and headers, never the coded
pictures: a recording of ciphertext (an encrypted room recorded without its key) or of
a corrupted stream passes them. Decoding is the only test that the media is media.
Each segment is decoded on its own (each begins on a keyframe, with its parameter sets
or after the init segment): a packet the decoder refuses, or fewer frames out than
packets in, is an error of that segment. PyAV is the recorder's own dependency (for
transcoding); the recorder itself never decodes what it passes through.
"""

from __future__ import annotations

import contextlib
import io

import av
import av.error
from av.audio.stream import AudioStream
from av.video.stream import VideoStream


def decode_errors(name: str, data: bytes, init: bytes = b"") -> list[str]:
    """What does not decode in one segment (``init``: the fMP4 init segment before it)."""
    try:
        container = av.open(io.BytesIO(init + data), mode="r",
                            format="mp4" if init else "mpegts")
    except (av.error.FFmpegError, ValueError) as exc:
        return [f"{name}: cannot be opened for decoding ({exc})"]
    with container:
        streams: list[VideoStream | AudioStream] = [*container.streams.video,
                                                     *container.streams.audio]
        packets = dict.fromkeys((s.index for s in streams), 0)
        frames, refused = dict(packets), dict(packets)
        try:
            for packet in container.demux(*streams):
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                index = packet.stream.index
                packets[index] += 1
                try:
                    frames[index] += len(packet.decode())
                except (av.error.FFmpegError, ValueError):
                    refused[index] += 1
        except av.error.FFmpegError as exc:
            return [f"{name}: cannot be read through for decoding ({exc})"]
        errors = []
        for stream in streams:  # (PyAV's streams are not to be touched once closed)
            index, codec = stream.index, stream.codec_context.name
            with contextlib.suppress(av.error.FFmpegError, ValueError):  # what it still holds
                frames[index] += len(stream.codec_context.decode(None))
            if refused[index]:
                errors.append(f"{name}: {refused[index]} of {packets[index]} {stream.type} "
                              f"packets do not decode ({codec})")
            elif stream.type == "video" and frames[index] < packets[index]:
                errors.append(f"{name}: {packets[index] - frames[index]} of {packets[index]} "
                              f"video frames do not decode ({codec})")
    return errors
