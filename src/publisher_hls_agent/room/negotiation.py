"""The codecs the recorder's answers accept, beyond aiortc's own H.264, VP8 and Opus.

aiortc builds every answer from its module-level codec table and has no decoder for
VP9 or AV1; the recorder needs none (``tap.py`` takes the RTP before aiortc would
decode), so both are added to that table, once per process. Accepting them makes the
server send a VP9 or AV1 publisher's own stream instead of its VP8 backup, or nothing.

Audio RED (RFC 2198, ``audio/red`` over Opus) is added too: a publisher that sends it
(browsers do) then reaches the recorder with its redundancy, which fills the holes of
lost packets (``tracks.OpusReader``); LiveKit strips it for a subscriber that does not
accept it, and does not add it to a publisher's plain Opus.
"""

from __future__ import annotations

from aiortc.codecs import CODECS
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters

from ..media.codecs import VIDEO_CODECS

_FEEDBACK = (RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli"),
             RTCRtcpFeedback(type="goog-remb"))
# The codecs aiortc lacks (``VideoCodec.negotiation``: payload types past aiortc's own,
# 96-102; an answer takes the offer's numbers anyway).
_EXTRA_VIDEO = [(codec.mime, *codec.negotiation) for codec in VIDEO_CODECS.values()
                if codec.negotiation is not None]


# LiveKit's offer: "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111" (Opus is 111).
_RED = RTCRtpCodecParameters(mimeType="audio/red", clockRate=48000, channels=2,
                             payloadType=63, parameters={"111/111": None})


def extend_codec_table() -> None:
    """Add VP9 (profile 0) and AV1, each with RTX, and audio RED to aiortc's codec
    table. Idempotent."""
    audio = CODECS["audio"]
    if not any(codec.mimeType.lower() == "audio/red" for codec in audio):
        audio.insert(0, _RED)  # an answer lists codecs in the offer's order anyway
    video = CODECS["video"]
    known = {codec.mimeType.lower() for codec in video}
    for mime, payload_type, parameters in _EXTRA_VIDEO:
        if mime.lower() in known:
            continue
        video.append(RTCRtpCodecParameters(mimeType=mime, clockRate=90000,
                                           payloadType=payload_type,
                                           rtcpFeedback=list(_FEEDBACK),
                                           parameters=dict(parameters)))
        video.append(RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000,
                                           payloadType=payload_type + 1,
                                           parameters={"apt": payload_type}))
