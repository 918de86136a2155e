"""Pure media parsing: RTP, H.264 and Opus. No sockets, no clocks."""
