"""Repairs for HLS recordings made by other tools: timestamps and playlists."""
