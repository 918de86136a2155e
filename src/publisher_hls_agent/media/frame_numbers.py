"""Reference pictures an H.264 stream lost before it reached us. Pure.

Each reference picture's ``frame_num`` is the previous one's plus one (H.264 7.4.3),
so a jump means a reference picture was never sent: the pictures after it cannot be
decoded until the next IDR, although no RTP packet went missing. A publisher of
pre-encoded video can cause it (an encoded frame thrown away before packetizing: by
libwebrtc's frame dropper, or a full queue), and so would any frame lost between a
publisher's encoder and its packetizer. A recorder that wrote such pictures would write
what no player shows; the reader treats the gap as a loss.
"""

from __future__ import annotations

from . import h264

_SLICES = (h264.NAL_SLICE, h264.NAL_IDR)


class FrameNumbers:
    """Follows one track's frame numbers from access unit to access unit."""

    def __init__(self) -> None:
        self._sps = b""
        self._info: h264.SpsInfo | None = None
        self._previous: int | None = None  # the last reference picture's frame_num

    def gap_before(self, nals: list[bytes], sps: bytes | None) -> bool:
        """Whether a reference picture is missing before this access unit (``sps``:
        the SPS in force)."""
        slice_nal = next((n for n in nals if h264.nal_type(n) in _SLICES), None)
        if slice_nal is None or sps is None:
            return False
        if sps != self._sps:
            self._sps, self._info, self._previous = sps, h264.sps_info(sps), None
        info = self._info
        if info is None or info.frame_num_gaps_allowed:
            return False
        if h264.nal_type(slice_nal) == h264.NAL_IDR:
            self._previous = 0  # an IDR's frame_num is 0 (7.4.3)
            return False
        frame_num = h264.slice_frame_num(slice_nal, info)
        if frame_num is None:
            return False
        previous = self._previous
        gap = previous is not None and frame_num not in (
            previous, (previous + 1) % (1 << info.frame_num_bits))
        if slice_nal[0] & 0x60:  # nal_ref_idc: a reference picture
            self._previous = frame_num
        return gap
