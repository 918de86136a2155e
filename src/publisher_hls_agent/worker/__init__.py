"""The LiveKit agent worker: registration, jobs, recording processes."""
