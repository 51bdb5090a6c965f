"""Log formatting for the sidecar: one JSON object per line, or text on a terminal.

The engine logs through the stdlib `logging` with structured fields in `extra`: `event`
(`decision`, `order`, `pass`, `policies`, `alert`, ...) and `data` (a JSON-ready mapping
such as an `ActionOutcome.to_json()`), plus any other simple field. `JsonFormatter` writes
them as one line each; `TextFormatter` writes `time level logger: message key=value`.
Secrets never reach a log line: the engine only logs values that are already safe to show
(secrets are `SecretStr` everywhere, docs/architecture.md invariant 9), `configure()`
quiets the HTTP client loggers that could print request URLs with credentials, and both
formatters scrub every secret value the process holds from the line they write
(`policies/redacting.py`; vendor text is already scrubbed where it enters).

Neighbours: `controller.py` and `service.py` log; `running.py` calls
`configure()`.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any, TextIO

from policies.redacting import scrub

_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


def _when(record: logging.LogRecord) -> str:
    moment = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _when(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(out, default=str, separators=(",", ":")))


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_when(record), record.levelname.lower(), f"{record.name}:", record.getMessage()]
        for key, value in _fields(record).items():
            text = json.dumps(value, default=str) if not isinstance(value, str) else value
            parts.append(f"{key}={text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Send `energyctl.*` logs to `stream` (stderr) as JSON (`json`), text (`text`), or
    text on a terminal and JSON otherwise (`auto`)."""
    target = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "text" if target.isatty() else "json"
    handler = logging.StreamHandler(target)
    handler.setFormatter(TextFormatter() if fmt == "text" else JsonFormatter())
    root = logging.getLogger("energyctl")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


__all__ = ["JsonFormatter", "TextFormatter", "configure"]
