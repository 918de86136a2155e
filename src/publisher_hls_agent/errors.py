"""Every error the agent raises, in one tree. Foreign errors (aiohttp, botocore, PyAV,
aiortc, the OS) are caught where they cross into the agent and raised again as one of
these, with a message a user can act on; the standard base each also has keeps the
``except ValueError``/``OSError``/``ConnectionError`` of callers that predate the tree.

    AgentError
    ├── ConfigError (ValueError)          an environment variable missing or invalid
    ├── InputError (ValueError)           bytes that are not what they claim to be
    │   ├── MediaError                    from a publisher, in RTP payloads and frames
    │   │   ├── H264PayloadError, Vp8PayloadError, Vp9PayloadError, Av1PayloadError,
    │   │   │   RedPayloadError           an RTP payload format broken (the RFC's)
    │   │   ├── BitsExhausted             a bitstream header that ends too soon
    │   │   └── NoVideoConfig             a keyframe without what a sample entry needs
    │   └── RecordingFileError            from a file on disk, for check and fix
    │       ├── PlaylistError, TsError, Mp4Error
    ├── FileRefused (OSError)             a file that will not be read (not regular, too big)
    ├── ToolError                         check or fix cannot run on its input (exit 2)
    │   ├── CheckError, FixError
    ├── TranscodeError                    a frame FFmpeg could not decode (PyAV's errors)
    ├── UploadError                       S3, with its cause (botocore's errors)
    ├── RoomError                         the LiveKit server, its room and its agent socket
    │   ├── SignalError (ConnectionError) signalling failed or was refused (aiohttp's)
    │   ├── RegistrationError             the worker's registration refused or unanswered
    │   └── CredentialsRejected           the API key and secret refused: no retry helps
    ├── ParticipantLeft                   the recorded participant left: a normal end
    ├── RpcError                          an RPC method's answer with an error code
    ├── Unauthorized                      an HTTP request without a usable token
    └── IllegalTransition (RuntimeError)  a recorder state change that is a bug
"""

from __future__ import annotations


class AgentError(Exception):
    """The root: ``except AgentError`` catches whatever the agent itself raises."""


class ConfigError(AgentError, ValueError):
    """An environment variable is missing or invalid. ``str()`` is one line for users."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class InputError(AgentError, ValueError):
    """Bytes that are not what they claim to be; the message says where."""


class MediaError(InputError):
    """A publisher's RTP payload or frame that does not parse."""


class H264PayloadError(MediaError):
    """An RTP payload that is not valid H.264 packetization (RFC 6184)."""


class Vp8PayloadError(MediaError):
    """A payload too short for the descriptor it announces, or a frame without start."""


class Vp9PayloadError(MediaError):
    """A payload too short for the descriptor it announces, or a picture without start."""


class Av1PayloadError(MediaError):
    """A payload whose elements overrun it, or a temporal unit that starts mid-OBU."""


class RedPayloadError(MediaError):
    """A RED payload (RFC 2198) whose block headers overrun it."""


class BitsExhausted(MediaError):
    """The header ended before the field being read."""


class NoVideoConfig(MediaError):
    """The first keyframe lacks what the sample entry is made from."""


class RecordingFileError(InputError):
    """A recording's file (playlist or segment) that does not parse."""


class PlaylistError(RecordingFileError):
    """Not a playlist that can be read (strictly: a line that cannot be read)."""


class TsError(RecordingFileError):
    """Not MPEG-TS, or a broken packet; the message names the byte offset."""


class Mp4Error(RecordingFileError):
    """Not fragmented MP4, or a broken box; the message names the byte offset."""


class FileRefused(AgentError, OSError):
    """A file named by a playlist that will not be read whole; ``str()`` says why."""


class ToolError(AgentError):
    """``check`` or ``fix`` cannot run on its input at all: exit status 2."""


class CheckError(ToolError):
    """The input is not a recording that can be checked at all."""


class FixError(ToolError):
    """The input cannot be fixed (not HLS over MPEG-TS, unreadable): exit status 2."""


class TranscodeError(AgentError):
    """A source frame that could not be decoded (damaged, or its references lost)."""


class UploadError(AgentError):
    """An S3 request that failed, with its cause for the metrics and the retries."""

    RETRIED_CAUSES = ("network", "server")  # may pass: tried again, with backoff

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(f"{cause}: {message}")
        self.cause = cause  # network | server | credentials | bucket | tls | other

    @property
    def retried(self) -> bool:
        return self.cause in self.RETRIED_CAUSES


class RoomError(AgentError):
    """The LiveKit server, a room on it, or the agent socket failed us."""


class SignalError(RoomError, ConnectionError):
    """The signalling session failed or was refused."""


class RegistrationError(RoomError):
    """The server refused or did not answer the worker's registration (retried)."""


class CredentialsRejected(RoomError):
    """The server rejects the API key and secret: retrying cannot help."""


class ParticipantLeft(AgentError):
    """The recorded participant left the room: the session ends normally."""


class RpcError(AgentError):
    """Raised by a method to answer with this error code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Unauthorized(AgentError):
    """No usable token; ``str()`` says why, without echoing the token."""


class IllegalTransition(AgentError, RuntimeError):
    """A recorder state change its lifecycle does not allow: a bug."""
