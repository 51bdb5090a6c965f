"""java-tron's wire conventions: default-field omission, `visible`, addresses, error bodies.

Pure functions between the HTTP layer (`app.py`) and the JSON-ready dicts of `reads.py`:
`encode` drops what java-tron's `JsonFormat` never prints (zero, false, empty string,
empty list) and rewrites the registered address fields to base58 when `visible` is true;
`parse_address` turns a request's address into hex or a java-tron-shaped error.
Source: java-tron's `JsonFormat` and HTTP servlets (https://github.com/tronprotocol/java-tron).
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.tron_node.accounts import to_base58, to_hex

# Field names java-tron registers as addresses (`HttpSelfFormatFieldName`) that occur in
# the messages this node prints; in these messages each name only ever holds an address.
ADDRESS_FIELDS = frozenset(
    {
        "address",
        "from",
        "to",
        "owner_address",
        "receiver_address",
        "contract_address",
        "to_address",
        "witness_address",
        "account",
        "fromAccounts",
        "toAccounts",
    }
)

ILLEGAL_ARGUMENT = "class java.lang.IllegalArgumentException"
HEX_DECODER = "class org.bouncycastle.util.encoders.DecoderException"
PARSE_EXCEPTION = "class org.tron.core.services.http.JsonFormat$ParseException"
NULL_POINTER = "class java.lang.NullPointerException"

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class WireError(Exception):
    """A request the servlet rejects; printed as `{"Error": message}` with HTTP 200."""


def truthy(value: Any) -> bool:
    """`Boolean.parseBoolean(String.valueOf(value))`: only `true` / "true" (any case)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _address_out(value: str) -> str:
    if len(value) == 40:  # 20-byte TVM address (logs): the node prefixes 41
        value = "41" + value
    return to_base58(value)


def clean(obj: Any, visible: bool) -> Any:
    """Drop default-valued fields (recursively) and convert addresses if `visible`.

    Messages that are present but empty stay as `{}` (a set sub-message, or a list entry
    such as the `frozenV2` BANDWIDTH entry); empty lists are dropped like absent fields.
    """
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if isinstance(value, dict):
                value = clean(value, visible)
            elif isinstance(value, list):
                if not value:
                    continue
                if visible and key in ADDRESS_FIELDS:
                    value = [_address_out(v) for v in value]
                else:
                    value = [clean(v, visible) for v in value]
            elif not value:  # 0, False, "", None
                continue
            elif visible and key in ADDRESS_FIELDS:
                value = _address_out(value)
            out[key] = value
        return out
    if isinstance(obj, list):
        return [clean(v, visible) for v in obj]
    return obj


def encode(obj: Any, visible: bool = False) -> bytes:
    """The response body: cleaned JSON and a trailing newline (java-tron uses println)."""
    return (_encoder.encode(clean(obj, visible)) + "\n").encode()


def error_body(message: str) -> bytes:
    return (_encoder.encode({"Error": message}) + "\n").encode()


def parse_address(value: Any, visible: bool, *, merge: bool = False) -> str | None:
    """A request address -> 42-char hex; None when absent or not a 21-byte `41` address.

    `merge=True` gives the error texts of servlets that parse the body with
    `JsonFormat.merge` (getaccount); others decode the field directly.
    """
    if value is None or value == "":
        return None
    text = str(value)
    if visible:
        if not (text.startswith("T") and len(text) == 34):
            if merge:
                raise WireError(f"{NULL_POINTER} : null")
            raise WireError(f"{ILLEGAL_ARGUMENT} : Invalid address: {text}")
        try:
            return to_hex(text)
        except ValueError as exc:
            if merge:
                raise WireError(f"{NULL_POINTER} : null") from exc
            raise WireError(f"{ILLEGAL_ARGUMENT} : Invalid checksum") from exc
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        if merge:
            raise WireError(f"{PARSE_EXCEPTION} : INVALID hex String") from exc
        raise WireError(
            f"{HEX_DECODER} : exception decoding Hex string: invalid characters encountered"
        ) from exc
    if len(raw) != 21 or raw[0] != 0x41:
        return None
    return raw.hex()


def parse_int(value: Any, default: int = 0) -> int:
    """A numeric request field (JSON number or query-string text)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise WireError(f"{ILLEGAL_ARGUMENT} : not a number: {value}")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise WireError(
            f'class java.lang.NumberFormatException : For input string: "{value}"'
        ) from exc
