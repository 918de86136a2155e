"""Webhook events: LiveKit's format and signature (checked by livekit-api's own
WebhookReceiver), the outbox's order and durability, delivery that outlasts a receiver
that is down."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from livekit import api
from livekit.protocol import egress

from publisher_hls_agent.hls.writer import SegmentRecord
from publisher_hls_agent.notify import sender
from publisher_hls_agent.notify.outbox import Outbox
from publisher_hls_agent.notify.recording_events import RecordingWebhooks
from publisher_hls_agent.notify.sender import WebhookSender, shown, signature

pytestmark = pytest.mark.unit

KEY, SECRET = "APIkey", "a-secret-of-at-least-32-characters!"
RECEIVER = api.WebhookReceiver(api.TokenVerifier(KEY, SECRET))


def segment(index: int) -> SegmentRecord:
    return SegmentRecord(f"segment{index:05d}.ts", index, index * 180_000, 2.0, 1000, False)


def test_a_recordings_events_are_livekits_own_and_verify(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    events = RecordingWebhooks(outbox, ("http://receiver/hook",), room="room",
                               room_id=lambda: "RM_1", participant="alice")
    events.started(tmp_path / "room_alice_20261207-010203.000")
    for index in range(3):
        events.segment_closed(segment(index), b"")
    events.finished()
    events.ended({"duration": 6.0, "segments": [{}] * 3,
                  "upload": {"complete": True, "bucket": "b", "prefix": "rec/x/"}})
    received = []
    for entry in outbox.pending():
        event = RECEIVER.receive(entry.body, signature(entry.body, KEY, SECRET))
        received.append((event.event, event.egress_info.status))
        outbox.delivered(entry)
    assert received == [("egress_started", egress.EgressStatus.EGRESS_ACTIVE),
                        ("egress_updated", egress.EgressStatus.EGRESS_ENDING),
                        ("egress_ended", egress.EgressStatus.EGRESS_COMPLETE)]
    assert outbox.pending() == []


def test_the_ended_event_says_where_and_what(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    events = RecordingWebhooks(outbox, ("http://r/1",), room="room", room_id=lambda: "RM_1",
                               participant="alice")
    events.started(tmp_path / "rec")
    events.segment_closed(segment(0), b"")
    events.ended({"duration": 2.0, "segments": [{}], "failure": "upload failed: boom"})
    last = json.loads(outbox.pending()[-1].body)
    info = last["egressInfo"]
    assert last["event"] == "egress_ended" and last["id"].startswith("EV_")
    assert info["status"] == "EGRESS_FAILED" and info["error"] == "upload failed: boom"
    assert info["egressId"].startswith("EG_") and info["roomId"] == "RM_1"
    assert info["participant"] == {"roomName": "room", "identity": "alice"}
    result = info["segmentResults"][0]
    assert result["playlistLocation"] == str(tmp_path / "rec" / "playlist.m3u8")
    assert (result["segmentCount"], result["duration"]) == ("1", "2000000000")


def test_a_recording_that_wrote_nothing_sends_nothing(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    events = RecordingWebhooks(outbox, ("http://r/1",), room="r", room_id=lambda: "",
                               participant="p")
    events.started(tmp_path / "rec")
    events.finished()
    events.ended({"duration": 0.0, "segments": []})
    assert outbox.pending() == []


def test_the_outbox_skips_what_is_not_an_event_of_ours(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.put("http://r/1", "{}")
    (outbox.folder / "00000000000000000001-1-00000000.json").write_text("not json")
    (outbox.folder / ".half-written.json.tmp").write_text("{")
    assert [entry.body for entry in outbox.pending()] == ["{}"]


def test_urls_are_logged_without_query_or_credentials() -> None:
    assert shown("https://u:p@h.example:8443/hook?token=s3cret#x") == "https://h.example:8443/hook"


async def test_delivery_waits_out_a_receiver_that_is_down_and_keeps_the_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sender, "FIRST_BACKOFF", 0.05)
    monkeypatch.setattr(sender, "POLL", 0.02)
    got: list[str] = []
    all_came = asyncio.Event()
    down = True

    async def hook(request: web.Request) -> web.Response:
        body = await request.text()
        if down:
            return web.Response(status=503)
        assert request.content_type == "application/webhook+json"
        got.append(RECEIVER.receive(body, request.headers["Authorization"]).id)
        if len(got) == 5:
            all_came.set()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    outbox = Outbox(tmp_path)
    for index in range(5):
        outbox.put(f"http://127.0.0.1:{port}/hook", json.dumps({"id": f"EV_{index}"}))
    failures: list[int] = []
    waits: list[float] = []
    delivery = WebhookSender(outbox, KEY, SECRET, on_delivered=waits.append,
                             on_failed=lambda: failures.append(1))
    task = asyncio.create_task(delivery.run())
    try:
        await asyncio.sleep(0.5)
        assert got == [] and len(failures) >= 2  # tried again, and again
        down = False
        await asyncio.wait_for(all_came.wait(), 10)
    finally:
        task.cancel()
        await runner.cleanup()
    assert got == [f"EV_{index}" for index in range(5)]
    assert outbox.pending() == [] and len(waits) == 5


async def test_an_unreachable_receiver_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.put("http://127.0.0.1:9/hook", "{}")  # the discard port: nobody there
    failures: list[int] = []
    delivery = WebhookSender(outbox, KEY, SECRET, on_failed=lambda: failures.append(1))
    async with aiohttp.ClientSession() as http:
        assert not await delivery.deliver_due(http)
    assert failures == [1] and len(outbox.pending()) == 1
