"""One participant's recording: state machine, pre-buffer, timeline and segmenting."""
