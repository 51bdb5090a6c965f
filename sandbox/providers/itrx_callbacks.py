"""itrx's signed order callbacks, delivered in emulated time (reference section 2.11).

When an itrx order ends (status 40 = success, 41 = failed) and has a callback URL, the
emulator queues a `CallbackJob`. `CallbackSender.send_due(now)` POSTs each due job:

- body: the payload as compact JSON with sorted keys (exactly the bytes signed);
- headers: `TIMESTAMP` (Unix seconds of the emulated clock), `SIGNATURE` = hex
  HMAC-SHA256(api_secret of the order's key, f"{TIMESTAMP}&{body}"), Content-Type JSON;
- any HTTP 200 acknowledges; anything else (or no connection) is retried after 15, 15, 30,
  180, 600, 1200 and 1800 emulated seconds, then delivery stops.

Only loopback URLs are called (the sandbox never reaches the network) unless a transport
is injected (`transport=httpx.ASGITransport(app)` or `httpx.MockTransport`).
Neighbours: `itrx.py` creates the jobs and calls `send_due` from `EmulatorBase.step()`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

RETRY_SCHEDULE: tuple[float, ...] = (15, 15, 30, 180, 600, 1200, 1800)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def compact_sorted(data: dict[str, Any]) -> str:
    """itrx's canonical JSON: keys sorted, separators `,` and `:`."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def hex_signature(secret: str, timestamp: str, body: str) -> str:
    """Lower-case hex HMAC-SHA256 of f"{timestamp}&{body}" (requests and callbacks)."""
    message = f"{timestamp}&{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass
class Attempt:
    at: float
    status: int | None  # HTTP status, None when no answer
    error: str = ""


@dataclass
class CallbackJob:
    """One callback to deliver, with its attempts so far."""

    url: str
    payload: dict[str, Any]
    secret: str
    next_at: float
    attempts: list[Attempt] = field(default_factory=list)
    delivered: bool = False
    abandoned: bool = False

    @property
    def done(self) -> bool:
        return self.delivered or self.abandoned


class CallbackSender:
    """Holds the callback jobs of one emulator and sends those that are due."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.transport = transport
        self.jobs: list[CallbackJob] = []

    def enqueue(self, url: str, payload: dict[str, Any], secret: str, now: float) -> CallbackJob:
        job = CallbackJob(url=url, payload=payload, secret=secret, next_at=now)
        self.jobs.append(job)
        return job

    def due(self, now: float) -> list[CallbackJob]:
        return [j for j in self.jobs if not j.done and j.next_at <= now]

    async def send_due(self, now: float) -> int:
        """Send every due job once; returns how many were acknowledged."""
        acknowledged = 0
        for job in self.due(now):
            status, error = await self._post(job, now)
            job.attempts.append(Attempt(now, status, error))
            if status == 200:
                job.delivered = True
                acknowledged += 1
                continue
            retries = len(job.attempts) - 1
            if retries >= len(RETRY_SCHEDULE):
                job.abandoned = True
            else:
                job.next_at = now + RETRY_SCHEDULE[retries]
        return acknowledged

    async def _post(self, job: CallbackJob, now: float) -> tuple[int | None, str]:
        if self.transport is None and urlsplit(job.url).hostname not in _LOOPBACK:
            return None, "refused: the sandbox only calls loopback URLs"
        timestamp = str(int(now))
        body = compact_sorted(job.payload)
        headers = {
            "Content-Type": "application/json",
            "TIMESTAMP": timestamp,
            "SIGNATURE": hex_signature(job.secret, timestamp, body),
        }
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=10.0) as http:
                response = await http.post(job.url, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, ""
