"""The HTTP API against a real aiohttp server: authentication, routes, status codes.
The agent behind it is a stand-in that records what it was asked (the real one is
exercised end to end in tests/integration/test_worker.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from livekit import api
from testbed.livekit_server import free_port

from publisher_hls_agent.api.auth import Unauthorized, authenticate
from publisher_hls_agent.api.server import build_app, start_server
from publisher_hls_agent.metrics import Metrics

pytestmark = pytest.mark.unit

KEY, SECRET = "APIkey", "a-secret-that-is-long-enough-for-hs256"


def token(key: str = KEY, secret: str = SECRET, **grants: Any) -> str:
    return (api.AccessToken(key, secret).with_identity("operator")
            .with_grants(api.VideoGrants(**grants)).to_jwt())


class Agent:
    def __init__(self) -> None:
        self.ready = True
        self.asked: list[tuple[str, str, str]] = []

    def recordings(self) -> list[dict[str, Any]]:
        return [{"room": "r1", "participant": "p1"}, {"room": "r2", "participant": "p2"}]

    def control(self, room: str, participant: str, op: str) -> object | None:
        if (room, participant) not in (("r1", "p1"), ("r2", "p2")):
            return None
        self.asked.append((room, participant, op))
        return object()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Agent]]:
    agent, port = Agent(), free_port()
    runner = await start_server(build_app(agent, Metrics(), KEY, SECRET, output_dir=tmp_path),
                                "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}", agent
    finally:
        await runner.cleanup()


async def call(method: str, url: str, bearer: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    async with aiohttp.ClientSession() as session, \
            session.request(method, url, headers=headers) as reply:
        return reply.status, await reply.text()


def test_tokens_must_be_ours_and_grant_room_record() -> None:
    assert authenticate(f"Bearer {token(room_record=True)}", KEY, SECRET).room is None
    assert authenticate(f"bearer {token(room_record=True, room='r1')}", KEY, SECRET).room == "r1"
    for header in (None, "", "Basic abc", "Bearer ", f"Bearer {token(room_join=True, room='r1')}",
                   f"Bearer {token(secret='another-secret-of-enough-length!!', room_record=True)}",
                   f"Bearer {token(key='other', room_record=True)}"):
        with pytest.raises(Unauthorized):
            authenticate(header, KEY, SECRET)


async def test_health_and_metrics_are_open(served: tuple[str, Agent]) -> None:
    url, agent = served
    assert (await call("GET", f"{url}/healthz"))[0] == 200
    assert (await call("GET", f"{url}/readyz"))[0] == 200
    agent.ready = False
    assert (await call("GET", f"{url}/readyz"))[0] == 503
    status, body = await call("GET", f"{url}/metrics")
    assert status == 200 and "hls_recordings_active" in body


async def test_control_needs_a_valid_token_and_changes_nothing_without(
        served: tuple[str, Agent]) -> None:
    url, agent = served
    activate = f"{url}/v1/recordings/r1/p1/activate"
    forged = token(room_record=True)[:-4] + "AAAA"
    for bearer in (None, "garbage", token(room_join=True, room="r1"), forged):
        assert (await call("POST", activate, bearer))[0] == 401
        assert (await call("GET", f"{url}/v1/recordings", bearer))[0] == 401
    assert agent.asked == []
    assert (await call("POST", activate, token(room_record=True, room="r2")))[0] == 403
    assert (await call("POST", f"{url}/v1/recordings/r1/nobody/stop",
                       token(room_record=True)))[0] == 404
    assert agent.asked == []
    assert (await call("POST", activate, token(room_record=True)))[0] == 202
    assert (await call("POST", f"{url}/v1/recordings/r2/p2/stop",
                       token(room_record=True, room="r2")))[0] == 202
    assert agent.asked == [("r1", "p1", "activate"), ("r2", "p2", "stop")]


async def test_a_room_token_lists_only_its_room(served: tuple[str, Agent]) -> None:
    url, _ = served
    status, body = await call("GET", f"{url}/v1/recordings", token(room_record=True, room="r2"))
    assert status == 200 and '"r2"' in body and '"r1"' not in body


def raw_token(claims: dict[str, Any]) -> str:
    import time

    import jwt
    now = int(time.time())
    return jwt.encode({"iss": KEY, "sub": "operator", "nbf": now - 10, "exp": now + 600,
                       **claims}, SECRET, algorithm="HS256")


@pytest.mark.parametrize("claims", [{"video": "x"}, {"video": ["roomRecord"]},
                                    {"video": {"roomRecord": "false"}},
                                    {"video": {"roomRecord": 1}},
                                    {"video": {"roomRecord": True, "room": 7}}])
def test_signed_tokens_with_odd_claims_are_refused_not_errors(claims: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        authenticate(f"Bearer {raw_token(claims)}", KEY, SECRET)


def test_a_plain_signed_token_with_the_grant_is_accepted() -> None:
    caller = authenticate(f"Bearer {raw_token({'video': {'roomRecord': True}})}", KEY, SECRET)
    assert caller.room is None
