"""Verification of itrx's signed delivery callbacks (pure: no I/O, time passed in).

itrx POSTs a JSON body after a delegation completes or fails (https://develop.itrx.io,
callbacks): headers `TIMESTAMP` and `SIGNATURE`, signed like a request with the secret of the
key that placed the order, over `"{TIMESTAMP}&{sorted JSON body}"`.

[?] The official Python verifier serialises with Python's default separators
(`", "`, `": "`) while the PHP, Java and Go verifiers use compact JSON. We accept the raw
body as received, then compact sorted JSON, then the spaced form (ASCII-escaped, as the
Python verifier would produce it). The sample verifier treats timestamps older than 100 s
as stale; `max_age` defaults to that.

Neighbours: `providers/itrx.py` (signing, status codes); used by the sidecar's callback
endpoint in `engine/sidecar/service.py`.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from providers.base import CallbackRejected, OrderState
from providers.itrx import sign
from providers.wire import PayloadError, as_object, floor_int, get_int, get_str, opt_str, to_decimal

DEFAULT_MAX_AGE = 100.0


@dataclass(frozen=True)
class ItrxCallback:
    serial: str
    status: int
    state: OrderState
    energy_amount: int | None
    delegated_energy: int
    txid: str | None
    out_trade_no: str | None
    receive_address: str | None
    raw: Mapping[str, Any] = field(repr=False)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _signed_forms(text: str, data: Mapping[str, Any]) -> list[str]:
    forms = [
        text,
        json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        json.dumps(data, sort_keys=True, separators=(",", ":")),
        json.dumps(data, sort_keys=True),
    ]
    return list(dict.fromkeys(forms))


def _body_text(body: bytes) -> tuple[str, Mapping[str, Any]]:
    """The body as UTF-8 text and its JSON object; CallbackRejected for anything else.

    `json.loads` of bytes also accepts UTF-16/32 and decodes `\\ud800` escapes into lone
    surrogates, which cannot be encoded again to be signed: itrx sends neither."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CallbackRejected("callback body is not UTF-8") from exc
    try:
        data = as_object(json.loads(text), "callback body")
    except (ValueError, RecursionError) as exc:
        raise CallbackRejected("callback body is not a JSON object") from exc
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CallbackRejected("callback body holds a lone surrogate escape") from exc
    return text, data


def _callback_state(status: int) -> OrderState:
    """Callbacks use 40 = success and 41 = failure; other codes keep the order open."""
    if status == 40:
        return OrderState.DELEGATED
    if status in (41, 43):
        return OrderState.FAILED
    return OrderState.DELEGATING


def verify_callback(
    headers: Mapping[str, str],
    body: bytes,
    api_secret: SecretStr,
    now: float,
    *,
    max_age: float = DEFAULT_MAX_AGE,
) -> ItrxCallback:
    """Check signature and age of an itrx callback and parse it. Raises CallbackRejected."""
    timestamp = _header(headers, "TIMESTAMP")
    signature = _header(headers, "SIGNATURE")
    if not timestamp or not signature:
        raise CallbackRejected("missing TIMESTAMP or SIGNATURE header")
    # ASCII digits only ('\u00b2'.isdigit() is true), and few enough for int()
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise CallbackRejected("TIMESTAMP is not Unix seconds (up to 12 ASCII digits)")
    if abs(now - int(timestamp)) > max_age:
        raise CallbackRejected("callback timestamp outside the accepted window")
    text, data = _body_text(body)
    secret = api_secret.get_secret_value()
    wanted = signature.strip().lower()
    if not wanted.isascii():
        raise CallbackRejected("SIGNATURE is not hex")
    if not any(
        hmac.compare_digest(sign(secret, timestamp, form), wanted)
        for form in _signed_forms(text, data)
    ):
        raise CallbackRejected("callback signature does not match")
    try:
        status = get_int(data, "status")
        pay = data.get("pay_amount")
        return ItrxCallback(
            serial=get_str(data, "serial"),
            status=status,
            state=_callback_state(status),
            energy_amount=get_int(data, "energy_amount", text=True)
            if data.get("energy_amount") is not None
            else None,
            delegated_energy=0 if pay is None else floor_int(to_decimal(pay, "pay_amount")),
            txid=opt_str(data, "txid") or None,
            out_trade_no=opt_str(data, "out_trade_no"),
            receive_address=opt_str(data, "receive_address"),
            raw=dict(data),
        )
    except PayloadError as exc:
        raise CallbackRejected(f"callback body malformed: {exc}") from exc
