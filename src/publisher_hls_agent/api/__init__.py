"""The agent's HTTP server: control, health, metrics."""
