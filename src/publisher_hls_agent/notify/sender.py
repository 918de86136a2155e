"""Delivering the outbox's events (``outbox.py``), signed as LiveKit signs its webhooks.

Each request carries the body (``application/webhook+json``) and an ``Authorization``
JWT signed HS256 with the API key and secret, whose ``sha256`` claim is the base64
SHA-256 of the body: what livekit-api's ``WebhookReceiver`` checks. A receiver that is
down or answers other than 2xx is tried again after a pause that doubles up to
``MAX_BACKOFF``, with jitter, for as long as it takes; its later events wait behind
the one not yet delivered, so they arrive in order. The URL is logged without its query
(where a receiver's own token may be), never the JWT.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import random
import time
import urllib.parse
from collections.abc import Callable

import aiohttp
from livekit import api

from .outbox import Outbox, Pending

logger = logging.getLogger(__name__)

POLL = 0.5  # seconds between looks at the outbox when it is empty
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
TIMEOUT = aiohttp.ClientTimeout(total=10)
CONTENT_TYPE = "application/webhook+json"


def signature(body: str, api_key: str, api_secret: str) -> str:
    """The JWT LiveKit puts in a webhook's Authorization header."""
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return api.AccessToken(api_key, api_secret).with_sha256(digest).to_jwt()


def shown(url: str) -> str:
    """A URL as the logs may show it: no query, no fragment, no credentials."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


class WebhookSender:
    def __init__(self, outbox: Outbox, api_key: str, api_secret: str, *,
                 on_delivered: Callable[[float], None] = lambda seconds: None,
                 on_failed: Callable[[], None] = lambda: None) -> None:
        """``on_delivered(seconds it waited in the outbox)``, ``on_failed()`` per failed
        attempt: for the metrics."""
        self._outbox = outbox
        self._key, self._secret = api_key, api_secret
        self._on_delivered, self._on_failed = on_delivered, on_failed
        self._retry_at: dict[str, float] = {}  # by URL: when its next attempt may go
        self._backoff: dict[str, float] = {}

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            while True:
                if not await self.deliver_due(http):
                    await asyncio.sleep(POLL)

    async def deliver_due(self, http: aiohttp.ClientSession) -> bool:
        """One pass over the outbox; whether anything was delivered."""
        loop = asyncio.get_running_loop()
        blocked: set[str] = set()  # URLs whose oldest event is still undelivered
        delivered = False
        for entry in await asyncio.to_thread(self._outbox.pending):
            if entry.url in blocked:
                continue
            if loop.time() < self._retry_at.get(entry.url, 0.0) or not await self._post(
                    http, entry):
                blocked.add(entry.url)
                continue
            await asyncio.to_thread(self._outbox.delivered, entry)
            delivered = True
        return delivered

    async def _post(self, http: aiohttp.ClientSession, entry: Pending) -> bool:
        headers = {"Content-Type": CONTENT_TYPE,
                   "Authorization": signature(entry.body, self._key, self._secret)}
        try:
            async with http.post(entry.url, data=entry.body.encode(), headers=headers) as reply:
                ok = 200 <= reply.status < 300
                failure = f"status {reply.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            ok, failure = False, type(exc).__name__
        loop = asyncio.get_running_loop()
        if ok:
            self._backoff.pop(entry.url, None)
            self._on_delivered(_age(entry))
            return True
        self._on_failed()
        backoff = self._backoff.get(entry.url, FIRST_BACKOFF / 2) * 2
        self._backoff[entry.url] = min(MAX_BACKOFF, backoff)
        wait = self._backoff[entry.url] * random.uniform(0.5, 1.0)
        self._retry_at[entry.url] = loop.time() + wait
        logger.warning("webhook to %s not delivered (%s); trying again in %.1f s",
                       shown(entry.url), failure, wait)
        return False


def _age(entry: Pending) -> float:
    """Seconds since the event was put (its name begins with the time, in ns)."""
    try:
        return max(0.0, time.time() - int(entry.path.name.split("-", 1)[0]) / 1e9)
    except ValueError:
        return 0.0
