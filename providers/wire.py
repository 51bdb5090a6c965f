"""Typed reads of vendor JSON: the adapters' parsers are built from these.

Every vendor answer is untrusted input. These helpers check the type of each field the
adapters use and raise `PayloadError` (a `ValueError`) when a field is missing or has the
wrong type, so that a parser either returns well-typed values or fails in one known way;
the adapter then maps `PayloadError` to a PROTOCOL error (see `providers/http.py`).

Money conversions live here too: vendors that speak TRX decimals are converted to integer
sun with `Decimal`, never through floats (money is int sun everywhere).

Neighbours: used by the vendor modules (`providers/<vendor>.py`); knows no HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

SUN_PER_TRX = 1_000_000
_INT_TEXT = re.compile(r"^-?[0-9]{1,30}$")
_DECIMAL_TEXT = re.compile(r"^-?[0-9]{1,30}(\.[0-9]{1,30})?$")


class PayloadError(ValueError):
    """A vendor answer lacks a field we need or has it with the wrong type."""


def as_object(value: Any, what: str = "answer") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{what} is not a JSON object")
    return value


def as_list(value: Any, what: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise PayloadError(f"{what} is not a JSON array")
    return value


def get_object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    return as_object(_get(data, key), f"field {key!r}")


def get_str(data: Mapping[str, Any], key: str) -> str:
    value = _get(data, key)
    if not isinstance(value, str):
        raise PayloadError(f"field {key!r} is not a string")
    return value


MAX_ID_LENGTH = 200


def get_id(data: Mapping[str, Any], key: str) -> str:
    """A vendor's order id: a non-blank string of at most `MAX_ID_LENGTH` characters.

    A receipt without a usable id could never be looked up again, so an answer carrying an
    empty one is as unreadable as an answer without it.
    """
    value = get_str(data, key)
    if not value.strip():
        raise PayloadError(f"field {key!r} is empty")
    if len(value) > MAX_ID_LENGTH:
        raise PayloadError(f"field {key!r} is longer than {MAX_ID_LENGTH} characters")
    return value


def non_negative(value: int, what: str) -> int:
    """`value` when >= 0: amounts, prices and costs a vendor reports are never negative."""
    if value < 0:
        raise PayloadError(f"field {what!r} is negative")
    return value


def opt_non_negative(value: int | None, what: str) -> int | None:
    return None if value is None else non_negative(value, what)


def opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"field {key!r} is not a string")
    return value


def get_int(data: Mapping[str, Any], key: str, *, text: bool = False) -> int:
    """An integer field. `text=True` also accepts a string of digits ("306773887")."""
    return to_int(_get(data, key), key, text=text)


def opt_int(data: Mapping[str, Any], key: str, *, text: bool = False) -> int | None:
    value = data.get(key)
    return None if value is None else to_int(value, key, text=text)


def to_int(value: Any, what: str, *, text: bool = False) -> int:
    if isinstance(value, bool):
        raise PayloadError(f"field {what!r} is a boolean, not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if text and isinstance(value, str) and _INT_TEXT.match(value.strip()):
        return int(value.strip())
    raise PayloadError(f"field {what!r} is not an integer")


def get_decimal(data: Mapping[str, Any], key: str) -> Decimal:
    """A decimal field given as a JSON number or a decimal string ("4.23", 0.8)."""
    return to_decimal(_get(data, key), key)


def to_decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool):
        raise PayloadError(f"field {what!r} is a boolean, not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr() of a float is its shortest round-trip text: 0.8 -> "0.8", not 0.800000000004
        text = repr(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise PayloadError(f"field {what!r} is not a number")
    if not _DECIMAL_TEXT.match(text):
        raise PayloadError(f"field {what!r} is not a plain decimal number")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - excluded by the pattern
        raise PayloadError(f"field {what!r} is not a number") from exc


def trx_to_sun(trx: Decimal, *, round_up: bool = True) -> int:
    """TRX (a decimal) to integer sun; costs round up, balances should round down."""
    rounding = ROUND_CEILING if round_up else ROUND_FLOOR
    return int((trx * SUN_PER_TRX).to_integral_value(rounding=rounding))


def floor_int(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def ceil_int(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _get(data: Mapping[str, Any], key: str) -> Any:
    if key not in data or data[key] is None:
        raise PayloadError(f"field {key!r} is missing")
    return data[key]
