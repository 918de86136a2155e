"""The LiveKit room client: signalling, aiortc transport and the encoded-media tap."""
