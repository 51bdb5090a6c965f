"""Diagnostics: what went wrong (or may go wrong) in a policy set, and where.

A `Diagnostic` names a file, a 1-based line and column (when the file has lines), a
severity, a short machine-readable code and a message that says what was wrong and what
would be valid. Its `str()` is the familiar compiler form `file:line:col: error: message`.
Diagnostics never contain secret values.

Neighbours: produced by `policies/reading.py`, `policies/loading.py` and
`policies/checking.py` (and by checks the engine registers); rendered by `engine/cli/`.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Location:
    """A place in a policy file: 1-based line and column, or just the file."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a policy set."""

    severity: Severity
    file: str | None
    line: int | None
    column: int | None
    message: str
    code: str = "invalid"

    @classmethod
    def error(cls, where: Location | None, message: str, code: str = "invalid") -> Diagnostic:
        return cls._at(Severity.ERROR, where, message, code)

    @classmethod
    def warning(cls, where: Location | None, message: str, code: str = "warning") -> Diagnostic:
        return cls._at(Severity.WARNING, where, message, code)

    @classmethod
    def _at(cls, severity: Severity, where: Location | None, message: str, code: str) -> Diagnostic:
        if where is None:
            return cls(severity, None, None, None, message, code)
        return cls(severity, where.file, where.line, where.column, message, code)

    @property
    def location(self) -> str:
        if self.file is None:
            return "<input>"
        return str(Location(self.file, self.line, self.column))

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        return f"{self.location}: {self.severity.value}: {self.message}"

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file or "", self.line or 0, self.column or 0, self.message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
        }


def sorted_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """By file, line and column; duplicates (same place and message) removed."""
    unique = {(d.sort_key(), d.severity, d.code): d for d in diagnostics}
    return [unique[key] for key in sorted(unique, key=lambda k: (k[0], k[1].value, k[2]))]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`"; did you mean 'threshold'?"` when a choice is close to `word`, else `""`."""
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        lowered = {option.lower(): option for option in options}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
    return f"; did you mean {close[0]!r}?" if close else ""


def one_of(choices: Iterable[str]) -> str:
    """`"'a', 'b' or 'c'"` for messages."""
    quoted = [repr(choice) for choice in choices]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
