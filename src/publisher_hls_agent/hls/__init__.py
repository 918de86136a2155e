"""HLS: segmenting decisions, playlists and MPEG-TS muxing."""
