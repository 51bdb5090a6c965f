"""'Energy ready' webhooks: one signed POST per deposit episode, retried until answered.

When a deposit episode's energy is on chain, the sidecar POSTs a JSON body to the
policy's `webhook.url`:

    {"event": "energy.ready", "policy": "...", "address": "T...", "energy": 64285,
     "available": 65000, "depositTx": "...", "deposits": 1, "order": "ec-...",
     "episode": 17, "readyAt": 1765000000.0}

with headers `X-Energyctl-Event: energy.ready`, `X-Energyctl-Delivery: <policy>-<episode>`
(the same on every retry: a receiver deduplicates on it), `X-Energyctl-Timestamp` (unix
seconds) and `X-Energyctl-Signature: sha256=<hex>`, the HMAC-SHA256 under the shared
secret of `<timestamp>.<body>` (RFC 2104; the timestamp is signed so that an old delivery
cannot be replayed later). docs/deposits.md shows the receiver's check.

Delivery: up to `attempts` tries with growing pauses on the injected clock; a 2xx answer
ends it, and the episode records `notified_at` in the store, so a restart does not send it
again. A crash between the answer and that write sends it once more (at least once, with
the same delivery id). Secrets never appear in logs or errors (policies/redacting.py).

Neighbours: `engine/sidecar/depositing.py` calls `WebhookSender.deliver`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from engine.core.clock import Clock

log = logging.getLogger("energyctl.webhooks")

SIGNATURE_HEADER = "X-Energyctl-Signature"
TIMESTAMP_HEADER = "X-Energyctl-Timestamp"
DELIVERY_HEADER = "X-Energyctl-Delivery"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: float = 300
) -> bool:
    """What a receiver runs: the signature matches and the timestamp is recent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    return hmac.compare_digest(given, sign(secret, stamp, body))


class WebhookSender:
    """POSTs signed events; `transport` is the seam for tests and the sandbox."""

    def __init__(
        self,
        clock: Clock,
        *,
        attempts: int = 5,
        first_pause: float = 1.0,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.clock = clock
        self.attempts = attempts
        self.first_pause = first_pause
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)
        self.sent = 0
        self.failed = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    async def deliver(self, url: str, secret: str, delivery: str, event: dict[str, Any]) -> bool:
        """Send `event` until a 2xx answer or the attempts run out; True when answered."""
        body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
        pause = self.first_pause
        for attempt in range(1, self.attempts + 1):
            stamp = str(int(self.clock.now()))
            headers = {
                "Content-Type": "application/json",
                "X-Energyctl-Event": str(event.get("event", "")),
                DELIVERY_HEADER: delivery,
                TIMESTAMP_HEADER: stamp,
                SIGNATURE_HEADER: sign(secret, stamp, body),
            }
            try:
                answer = await self._client.post(url, content=body, headers=headers)
                if 200 <= answer.status_code < 300:
                    self.sent += 1
                    return True
                why = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}"
            log.warning(
                "webhook not delivered",
                extra={"event": "webhook", "delivery": delivery, "attempt": attempt, "why": why},
            )
            if attempt < self.attempts:
                await self.clock.sleep(pause)
                pause *= 2
        self.failed += 1
        return False


__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookSender", "sign", "verify"]
