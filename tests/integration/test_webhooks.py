"""LiveKit-signed webhooks from the agent as users run it: every event of a recording
reaches a receiver built on livekit-api's own ``WebhookReceiver`` and verifies; a
receiver down for a minute and an agent SIGKILLed and restarted meanwhile lose none."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from livekit import api
from testbed.livekit_server import LiveKitServer
from testbed.minio import MinIO

from publisher_hls_agent.notify.outbox import OUTBOX_NAME

from .support import agent, dispatch_job, publishing, wait_for

pytestmark = pytest.mark.integration

SMALL = {"width": 320, "height": 240}


@dataclass
class Received:
    event: str
    egress_id: str
    status: str
    location: str
    error: str
    delay: float  # seconds from the event's creation to its arrival


@dataclass
class Receiver:
    """A backend's webhook endpoint, verifying as livekit-api does."""

    verifier: api.WebhookReceiver
    url: str = ""
    down: bool = False
    events: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # what did not verify, and why

    async def handle(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503)
        body = await request.text()
        try:
            event = self.verifier.receive(body, request.headers.get("Authorization", ""))
        except Exception as exc:  # whatever it is, it failed to verify
            self.refused.append(repr(exc))
            return web.Response(status=401)
        info = event.egress_info
        self.events.append(Received(
            event.event, info.egress_id, api.EgressStatus.Name(info.status),
            info.segment_results[0].playlist_location if info.segment_results else "",
            info.error, time.time() - event.created_at))
        return web.Response()

    def of(self, egress_id: str) -> list[str]:
        return [f"{e.event}:{e.status}" for e in self.events if e.egress_id == egress_id]


@contextlib.asynccontextmanager
async def receiving(server: LiveKitServer) -> AsyncIterator[Receiver]:
    receiver = Receiver(api.WebhookReceiver(api.TokenVerifier(server.api_key,
                                                              server.api_secret)))
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hook?token=receivers-own"
    try:
        yield receiver
    finally:
        await runner.cleanup()


async def test_every_event_of_a_recording_arrives_signed_and_in_order(
        livekit_server: LiveKitServer, minio: MinIO, tmp_path: Path) -> None:
    await minio.create_bucket("hooks")
    async with receiving(livekit_server) as receiver, agent(
            livekit_server, tmp_path, "hooks", WEBHOOK_URLS=receiver.url,
            **minio.environment("hooks")) as worker:
        await dispatch_job(livekit_server, "hooks", "hooks")
        async with publishing(livekit_server, "hooks", "hanna", **SMALL):
            await wait_for(lambda: any(e.event == "egress_started" for e in receiver.events),
                           30, "egress_started")
            await wait_for(lambda: any((tmp_path / "out").glob("*/segment00004.ts")), 30,
                           "five segments")
        await wait_for(lambda: any(e.event == "egress_ended" for e in receiver.events), 30,
                       "egress_ended")
        assert "receivers-own" not in worker.log()
    [egress] = {e.egress_id for e in receiver.events}
    assert receiver.of(egress) == ["egress_started:EGRESS_ACTIVE",
                                   "egress_updated:EGRESS_ENDING",
                                   "egress_ended:EGRESS_COMPLETE"]
    assert receiver.refused == []
    ended = receiver.events[-1]
    assert ended.location.startswith("s3://hooks/") and ended.location.endswith(".m3u8")
    assert ended.location.removeprefix("s3://hooks/") in await minio.keys("hooks")
    print("delivery delays (s):", [round(e.delay, 2) for e in receiver.events])
    assert not list((tmp_path / "out" / OUTBOX_NAME).glob("*.json"))


async def test_a_receiver_down_for_a_minute_and_a_killed_agent_lose_no_event(
        livekit_server: LiveKitServer, tmp_path: Path) -> None:
    """The receiver refuses everything for 60 s; meanwhile the agent records, is
    SIGKILLed with its recording processes, and starts again (closing the cut-short
    recording, which is an egress_ended of its own). Once the receiver is back, every
    event arrives, each verifies, each recording's in order."""
    output = tmp_path / "out"
    async with receiving(livekit_server) as receiver:
        receiver.down = True
        down_since = time.monotonic()
        async with agent(livekit_server, tmp_path, "hooks-kill",
                         WEBHOOK_URLS=receiver.url) as worker:
            await dispatch_job(livekit_server, "hooks-kill", "hooks-kill")
            async with publishing(livekit_server, "hooks-kill", "kai", **SMALL):
                await wait_for(lambda: any(output.glob("*/segment00003.ts")), 30, "segments")
                await worker.kill_all()
        async with agent(livekit_server, tmp_path, "hooks-kill", WEBHOOK_URLS=receiver.url):
            await wait_for(lambda: len(list((output / OUTBOX_NAME).glob("*.json"))) >= 2, 30,
                           "the closing's event in the outbox")
            await asyncio.sleep(max(0.0, 60 - (time.monotonic() - down_since)))
            assert receiver.events == []
            receiver.down = False
            await wait_for(lambda: not list((output / OUTBOX_NAME).glob("*.json")), 60,
                           "the outbox delivered")
    assert receiver.refused == []
    [egress] = {e.egress_id for e in receiver.events}
    assert receiver.of(egress) == ["egress_started:EGRESS_ACTIVE",
                                   "egress_ended:EGRESS_FAILED"]
    assert "interrupted" in receiver.events[-1].error
