"""Who may control recordings over HTTP: a LiveKit access token, signed with the
agent's API key and secret, granting ``roomRecord`` (the grant LiveKit gives recording
control). A token limited to one room (``video.room``) controls only that room."""

from __future__ import annotations

from dataclasses import dataclass

import jwt
from livekit import api

from ..errors import Unauthorized


@dataclass(frozen=True)
class Caller:
    identity: str
    room: str | None  # None: every room

    def may_control(self, room: str) -> bool:
        return self.room is None or self.room == room

    def may_see(self, room: str | None) -> bool:
        """A recording of no known room (cut short by a crash) is for every-room tokens."""
        return self.room is None if room is None else self.may_control(room)


def authenticate(authorization: str | None, api_key: str, api_secret: str) -> Caller:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an Authorization: Bearer <LiveKit access token> header is required")
    try:
        claims = api.TokenVerifier(api_key, api_secret).verify(token.strip())
    except (jwt.PyJWTError, ValueError) as exc:
        raise Unauthorized(f"invalid token ({type(exc).__name__})") from None
    except (AttributeError, TypeError, KeyError):
        # Signed with our secret, but its claims are not LiveKit's shapes ("video": "x"):
        # the verifier's parsing breaks on them. Still no entry.
        raise Unauthorized("invalid token (malformed claims)") from None
    video = claims.video
    # The grant must be JSON true: "false" (a string) is truthy in Python.
    if video is None or video.room_record is not True:
        raise Unauthorized("the token does not grant roomRecord")
    room = video.room
    if room is not None and not isinstance(room, str):
        raise Unauthorized("invalid token (malformed claims)")
    identity = claims.identity if isinstance(claims.identity, str) else ""
    return Caller(identity=identity, room=room or None)
