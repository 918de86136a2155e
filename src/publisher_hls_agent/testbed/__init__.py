"""Test bed for the demo and the tests: a real livekit-server and a synthetic publisher."""
