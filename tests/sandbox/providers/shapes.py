"""Compare an emulator's JSON with a pinned vendor payload: same keys, same value types.

Values are not compared (ids, timestamps and amounts differ by design). Pinned payloads
live under `tests/providers/payloads/<vendor>/` (taken from the vendor docs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).resolve().parents[2] / "providers" / "payloads"


def load(vendor: str, name: str) -> Any:
    return json.loads((PAYLOADS / vendor / name).read_text())


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def shape_errors(actual: Any, pinned: Any, where: str = "$") -> list[str]:
    """Differences in keys and value types between `actual` and `pinned` (empty: same shape).

    Numbers match numbers (the docs mix 0 and 0.0); a null on either side matches anything
    (the docs show nulls for "not yet known"); lists compare their first items.
    """
    if actual is None or pinned is None:
        return []
    if _kind(actual) != _kind(pinned):
        return [f"{where}: {_kind(actual)} where the vendor has {_kind(pinned)}"]
    errors: list[str] = []
    if isinstance(pinned, dict):
        missing = sorted(set(pinned) - set(actual))
        extra = sorted(set(actual) - set(pinned))
        if missing:
            errors.append(f"{where}: missing keys {missing}")
        if extra:
            errors.append(f"{where}: keys the vendor does not send {extra}")
        for key in set(pinned) & set(actual):
            errors += shape_errors(actual[key], pinned[key], f"{where}.{key}")
    elif isinstance(pinned, list) and pinned and actual:
        errors += shape_errors(actual[0], pinned[0], f"{where}[0]")
    return errors
