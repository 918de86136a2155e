"""publisher-hls-agent: record every LiveKit publisher to HLS, H.264 passed through."""

__version__ = "0.1.0"
