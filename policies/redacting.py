"""Every secret value the process holds, and `scrub(text)` that removes them from text.

A vendor may echo what we sent it (our API key in "invalid key ABC..."), and its text is
stored (orders.last_error, order_events, provider_health), logged and served. The process
registers each secret value once, where it comes to hold it: the policy loader for every
resolved `SecretRef` (API keys and secrets, the API token, the store password, the node
key), `engine/sidecar/alerting.py` for the Telegram token and the webhook URL. `scrub` replaces
each occurrence, also URL-encoded or JSON-escaped and in any letter case, by
`[redacted]`.

Where vendor text enters the engine it is scrubbed once: `providers.base.ProviderError`
scrubs its message and vendor code, and the `raw` answers kept in quotes, receipts and
statuses are scrubbed when those are built. `engine/sidecar/logs.py` scrubs every log line as a
second net. Values shorter than `MIN_LENGTH` are not registered: scrubbing them would
mangle ordinary text, and no credential is that short.

This module is the lowest layer's so that policies, providers and the engine share one
registry. Neighbours: `policies/base.py` (`SecretRef`), `providers/base.py`,
`engine/sidecar/logs.py`.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

MIN_LENGTH = 6
REDACTED = "[redacted]"

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None


def remember(*values: str | SecretStr | None) -> None:
    """Register secret values (None and short values are ignored)."""
    global _pattern
    added = False
    with _lock:
        for value in values:
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if text is None or len(text) < MIN_LENGTH:
                continue
            for form in _forms(text):
                if form not in _values:
                    _values.add(form)
                    added = True
        if added:
            ordered = sorted(_values, key=len, reverse=True)  # longest first: no partial hits
            _pattern = re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)


def _forms(text: str) -> set[str]:
    return {
        text,
        urllib.parse.quote(text, safe=""),
        urllib.parse.quote_plus(text),
        json.dumps(text)[1:-1],
    }


def forget_all() -> None:
    """Clear the registry (tests)."""
    global _pattern
    with _lock:
        _values.clear()
        _pattern = None


def scrub(text: str) -> str:
    """`text` with every registered secret value replaced by `[redacted]`."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


def scrub_data(data: Any) -> Any:
    """`scrub` applied to every string (keys too) of decoded JSON-like data."""
    if _pattern is None:
        return data
    if isinstance(data, str):
        return scrub(data)
    if isinstance(data, Mapping):
        return {scrub_data(k): scrub_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(scrub_data(v) for v in data)
    return data


__all__ = ["MIN_LENGTH", "REDACTED", "forget_all", "remember", "scrub", "scrub_data"]
