"""LiveKit RPC, the answering side: requests arrive as ``DataPacket.rpc_request`` on
the data channel; the answer is an ``rpc_ack`` at once (callers give up after a couple
of seconds without one) and then an ``rpc_response`` with a payload or an error, both
addressed to the caller. Pure but for the ``send`` it is given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from livekit.protocol import models

from ..errors import RpcError

logger = logging.getLogger(__name__)

RPC_VERSION = 1
# Error codes every LiveKit SDK knows (RpcError.ErrorCode in the client SDKs).
APPLICATION_ERROR = 1500
UNSUPPORTED_METHOD = 1400
UNSUPPORTED_VERSION = 1404

RpcMethod = Callable[[str, str], Awaitable[str]]  # (caller identity, payload) -> payload


class RpcServer:
    def __init__(self, methods: dict[str, RpcMethod], send: Callable[[bytes], None]) -> None:
        self._methods = methods
        self._send = send
        self._tasks: set[asyncio.Task[None]] = set()

    def on_data(self, raw: bytes) -> None:
        packet = models.DataPacket()
        try:
            packet.ParseFromString(raw)
        except Exception:  # protobuf's DecodeError; not ours to judge
            return
        if packet.WhichOneof("value") != "rpc_request":
            return
        request, caller = packet.rpc_request, packet.participant_identity
        self._reply(caller, models.DataPacket(rpc_ack=models.RpcAck(request_id=request.id)))
        task = asyncio.get_running_loop().create_task(self._answer(caller, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, caller: str, request: models.RpcRequest) -> None:
        method = self._methods.get(request.method)
        try:
            if request.version != RPC_VERSION:
                raise RpcError(UNSUPPORTED_VERSION, f"RPC version {request.version} unsupported")
            if method is None:
                raise RpcError(UNSUPPORTED_METHOD, f"no method {request.method!r}")
            payload = await method(caller, request.payload)
        except RpcError as exc:
            error = models.RpcError(code=exc.code, message=exc.message)
            self._respond(caller, models.RpcResponse(request_id=request.id, error=error))
            return
        except Exception as exc:
            logger.exception("RPC %s from %r failed", request.method, caller)
            error = models.RpcError(code=APPLICATION_ERROR, message=type(exc).__name__)
            self._respond(caller, models.RpcResponse(request_id=request.id, error=error))
            return
        self._respond(caller, models.RpcResponse(request_id=request.id, payload=payload))

    def _respond(self, caller: str, response: models.RpcResponse) -> None:
        self._reply(caller, models.DataPacket(rpc_response=response))

    def _reply(self, caller: str, packet: models.DataPacket) -> None:
        packet.kind = models.DataPacket.Kind.RELIABLE
        packet.destination_identities.append(caller)
        self._send(packet.SerializeToString())
