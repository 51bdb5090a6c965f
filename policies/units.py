"""Units people write in policy files, and the integers the engine works with.

Energy (`65000`, `65k`, `1.5M`) -> int energy; money (`12.5 TRX`, `3000000 sun`) -> int sun;
durations (`90s`, `10m`, `1h`, `30d`) -> int seconds; unit prices (`95 sun/energy`) -> int
milli-sun per energy; addresses -> the base58check `T...` form, checked with tronpy.

Decimals are parsed with `decimal.Decimal`; a value that is not a whole number of the
target unit is rejected, so no float ever carries money (money is int sun everywhere).
Every parser raises `ValueError` with a message saying what would be valid.

Numbers are plain decimals in the ASCII digits 0-9: other scripts' digits (`\u0663`, which
`\\d` and `Decimal` accept), hex `0x10`, octal `0o17`, binary `0b101`, sexagesimal `1:30`
and underscores `1_000` are refused with a hint (YAML 1.1 reads the unquoted forms as
integers; `policies/reading.py` hands them over as the text written so they land here).

Neighbours: `policies/models.py` uses the annotated types (`Energy`, `Sun`, ...); the CLI
uses the `format_*` helpers to render tables.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from tronpy.keys import is_base58check_address, to_hex_address

SUN_PER_TRX = 1_000_000
MILLI = 1_000  # unit prices are kept in milli-sun per energy

_NUMBER = r"([0-9]+(?:\.[0-9]+)?)"  # ASCII digits only: `\d` matches every script's
ENERGY_PATTERN = rf"^\s*{_NUMBER}\s*([kKM]?)\s*(?:energy)?\s*$"
SUN_PATTERN = rf"^\s*{_NUMBER}\s*([Tt][Rr][Xx]|[Ss][Uu][Nn])\s*$"
DURATION_PATTERN = rf"^\s*{_NUMBER}\s*(s|m|min|h|d|w)\s*$"
UNIT_PRICE_PATTERN = rf"^\s*{_NUMBER}\s*([Tt][Rr][Xx]|[Ss][Uu][Nn])\s*/\s*energy\s*$"
ADDRESS_PATTERN = r"^T[1-9A-HJ-NP-Za-km-z]{33}$"

_ENERGY_RE = re.compile(ENERGY_PATTERN)
_SUN_RE = re.compile(SUN_PATTERN)
_DURATION_RE = re.compile(DURATION_PATTERN)
_UNIT_PRICE_RE = re.compile(UNIT_PRICE_PATTERN)
_ADDRESS_RE = re.compile(ADDRESS_PATTERN)

_ENERGY_SCALE = {"": 1, "k": 1_000, "K": 1_000, "M": 1_000_000}
_DURATION_SCALE = {"s": 1, "m": 60, "min": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_MAX_TEXT = 64  # longer inputs are not a unit value; refuse before running a regex


def _describe(value: object) -> str:
    """A short, safe rendering of a bad input for an error message."""
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float, Decimal)):
        return f"the bare number {value}"
    if value is None:
        return "nothing (null)"
    return f"a {type(value).__name__}"


_OTHER_NUMERAL = re.compile(r"^\s*[-+]?(0[xXoObB]|[0-9]+[_:])")


def _numeral_hint(value: object) -> str:
    """Why a numeral-looking input is not read, or ''."""
    if not isinstance(value, str):
        return ""
    if any(ch.isdigit() and not ch.isascii() for ch in value):
        return " (only the ASCII digits 0-9 are read)"
    if _OTHER_NUMERAL.match(value):
        return (
            " (write a plain decimal: hex, octal, binary, sexagesimal 1:30 and 1_000 are not read)"
        )
    return ""


def _scaled(number: str, scale: int, what: str, value: object) -> int:
    try:
        exact = Decimal(number) * scale
    except InvalidOperation as exc:  # pragma: no cover - the regexes admit only digits
        raise ValueError(f"{what}: cannot read {_describe(value)}") from exc
    if exact != exact.to_integral_value():
        raise ValueError(f"{_describe(value)} is not a whole number of {what}")
    return int(exact)


def _text(value: object) -> str | None:
    if isinstance(value, str) and len(value) <= _MAX_TEXT:
        return value
    return None


def parse_energy(value: object) -> int:
    """`65000`, `"65k"`, `"1.5M"` -> energy as int (zero allowed; negatives are not)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"energy cannot be negative, got {value}")
        return value
    text = _text(value)
    match = _ENERGY_RE.match(text) if text is not None else None
    if match is None:
        raise ValueError(
            f"expected an energy amount such as 65000, 65k or 1.5M, got {_describe(value)}"
            f"{_numeral_hint(value)}"
        )
    return _scaled(match.group(1), _ENERGY_SCALE[match.group(2)], "energy", value)


def parse_sun(value: object) -> int:
    """`"12.5 TRX"`, `"3000000 sun"` -> int sun. Bare numbers are rejected as ambiguous."""
    text = _text(value)
    match = _SUN_RE.match(text) if text is not None else None
    if match is None:
        hint = " (a bare number is ambiguous: say TRX or sun)" if _is_number(value) else ""
        hint = hint or _numeral_hint(value)
        raise ValueError(
            f"expected an amount of money such as '12.5 TRX' or '3000000 sun', "
            f"got {_describe(value)}{hint}"
        )
    scale = SUN_PER_TRX if match.group(2).lower() == "trx" else 1
    return _scaled(match.group(1), scale, "sun", value)


def parse_duration(value: object) -> int:
    """`"90s"`, `"10m"`, `"1h"`, `"1d"`, `"30d"` -> whole seconds. Bare numbers are rejected."""
    text = _text(value)
    match = _DURATION_RE.match(text) if text is not None else None
    if match is None:
        hint = " (a bare number is ambiguous: add a unit)" if _is_number(value) else ""
        hint = hint or _numeral_hint(value)
        raise ValueError(
            "expected a duration such as 90s, 10m, 1h, 1d or 30d "
            f"(units s, m, h, d, w), got {_describe(value)}{hint}"
        )
    return _scaled(match.group(1), _DURATION_SCALE[match.group(2)], "seconds", value)


def parse_unit_price(value: object) -> int:
    """`"95 sun/energy"` -> 95000, `"95.5 sun/energy"` -> 95500 (milli-sun per energy)."""
    text = _text(value)
    match = _UNIT_PRICE_RE.match(text) if text is not None else None
    if match is None:
        hint = " (a bare number is ambiguous: say sun/energy)" if _is_number(value) else ""
        hint = hint or _numeral_hint(value)
        raise ValueError(
            f"expected a price per unit of energy such as '95 sun/energy', "
            f"got {_describe(value)}{hint}"
        )
    scale = MILLI * (SUN_PER_TRX if match.group(2).lower() == "trx" else 1)
    return _scaled(match.group(1), scale, "milli-sun per energy", value)


def validate_address(value: object) -> str:
    """A TRON address in base58check form (`T...`, 34 characters) with a valid checksum."""
    if not isinstance(value, str):
        raise ValueError(f"expected a TRON address (T..., 34 characters), got {_describe(value)}")
    if not _ADDRESS_RE.match(value):
        raise ValueError(
            f"invalid TRON address {_describe(value)}: expected 34 base58 characters "
            "starting with T (hex and 0x forms are not accepted in policy files)"
        )
    try:  # tronpy raises (ValueError and friends) instead of returning False
        valid = bool(is_base58check_address(value)) and to_hex_address(value).startswith("41")
    except Exception:  # any failure inside tronpy means "not an address"
        valid = False
    if not valid:
        raise ValueError(
            f"invalid TRON address {_describe(value)}: the base58check checksum does not "
            "match (a character is probably mistyped)"
        )
    return value


def _is_number(value: object) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return True
    if isinstance(value, str):
        try:
            Decimal(value.strip())
        except InvalidOperation:
            return False
        return True
    return False


# --------------------------------------------------------------------------- formatting


def _decimal_text(value: int, scale: int) -> str:
    whole, rest = divmod(value, scale)
    if rest == 0:
        return str(whole)
    digits = len(str(scale)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


def format_sun(value: int) -> str:
    """3_000_000 -> "3 TRX", 1_500_000 -> "1.5 TRX", 420 -> "420 sun"."""
    if abs(value) < 1_000 and value != 0:
        return f"{value} sun"
    sign = "-" if value < 0 else ""
    return f"{sign}{_decimal_text(abs(value), SUN_PER_TRX)} TRX"


def format_energy(value: int) -> str:
    """65_000 -> "65k", 1_500_000 -> "1.5M", 65_432 -> "65432"."""
    if value >= 1_000_000 and value % 100_000 == 0:
        return f"{_decimal_text(value, 1_000_000)}M"
    if value >= 1_000 and value % 100 == 0:
        return f"{_decimal_text(value, 1_000)}k"
    return str(value)


def format_duration(seconds: int) -> str:
    """3600 -> "1h", 5400 -> "90m", 2_592_000 -> "30d", 0 -> "0s"."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_unit_price(milli_sun: int) -> str:
    """95_000 -> "95 sun/energy", 95_500 -> "95.5 sun/energy"."""
    return f"{_decimal_text(milli_sun, MILLI)} sun/energy"


# --------------------------------------------------------------------------- pydantic types


def _positive(parse: Any, what: str) -> Any:
    def check(value: object) -> int:
        number: int = parse(value)
        if number <= 0:
            raise ValueError(f"{what} must be greater than zero, got {_describe(value)}")
        return number

    return check


def _string_or_int_schema(pattern: str, description: str) -> dict[str, Any]:
    return {
        "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": pattern}],
        "description": description,
    }


Energy = Annotated[
    int,
    BeforeValidator(_positive(parse_energy, "an energy amount")),
    WithJsonSchema(_string_or_int_schema(ENERGY_PATTERN, "Energy: 65000, 65k, 1.5M.")),
]
"""An energy amount > 0, written `65000`, `65k` or `1.5M`."""

Sun = Annotated[
    int,
    BeforeValidator(_positive(parse_sun, "an amount of money")),
    PlainSerializer(format_sun, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": SUN_PATTERN, "description": "Money: '12.5 TRX', '3000 sun'."}
    ),
]
"""Money > 0 in sun, written `12.5 TRX` or `3000000 sun`."""

Duration = Annotated[
    int,
    BeforeValidator(_positive(parse_duration, "a duration")),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "description": "Duration: 90s, 10m, 1h."}
    ),
]
"""A duration > 0 in whole seconds, written `90s`, `10m`, `1h`, `1d`."""

UnitPrice = Annotated[
    int,
    BeforeValidator(_positive(parse_unit_price, "a unit price")),
    PlainSerializer(format_unit_price, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": UNIT_PRICE_PATTERN,
            "description": "Price per unit of energy: '95 sun/energy'.",
        }
    ),
]
"""A price per unit of energy > 0, in milli-sun, written `95 sun/energy`."""

Address = Annotated[
    str,
    BeforeValidator(validate_address),
    WithJsonSchema(
        {"type": "string", "pattern": ADDRESS_PATTERN, "description": "TRON address (T...)."}
    ),
]
"""A TRON address in base58check form, checksum verified."""
