"""Reading recordings, for ``check`` and ``fix`` alike: the media playlist, MPEG-TS and
fMP4 segments, and how long a segment's media lasts. Pure, bounded, and hardened
against hostile input: each reader says what is wrong in its own error type."""
