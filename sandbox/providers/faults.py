"""Fault injection for the vendor emulators: what can go wrong, on demand.

A `Faults` object is handed to an emulator at construction (`ItrxEmulator(..., faults=f)`)
and changed by the test or the sandbox while the emulator runs. Knobs:

- per request, queued in order: `fail_next` (an HTTP 5xx, optionally *after* the order was
  accepted, i.e. an ambiguous outcome), `answer_next` (any given answer instead of the
  vendor's, e.g. an error envelope after the order was accepted, or a 2xx that cannot be
  parsed) and `hang_next` (the answer is held for a long emulated time, awaited on the
  emulator's clock);
- per order, for orders accepted from then on: `slow_delivery`, `no_delivery`,
  `partial_delivery`;
- the price moving between the quote and the order: `charge_markup` (orders created from
  then on are charged a share more than the price list says, up to an optional ceiling;
  TronSave, which enforces our `maxPriceAccepted`, refuses an order the move takes above
  it);
- per emulator: `rate_limit` (requests per emulated second, answered with the vendor's own
  rate-limit response) and `set_balance` (applied at the next request or tick);
- `echo_credentials`: the next requests are refused with the vendor's own error whose
  text quotes the credential headers the client sent (a vendor that echoes the key).

`on=` restricts a queued fault to one operation name ("create", "status", "balance",
"price"...); each emulator documents its operation names. Neighbours: `emulating.py`
consumes these knobs; `delivery.py` reads the per-order ones.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Injected:
    """One queued request fault."""

    kind: Literal["fail", "hang", "answer", "echo"]
    status: int = 500
    after_accept: bool = True
    seconds: float = 3600.0
    on: str | None = None
    body: bytes = b""
    media_type: str = "application/json"


class Faults:
    """The fault knobs of one emulator. All methods are safe to call at any time."""

    def __init__(self) -> None:
        self._queue: list[Injected] = []
        self.delivery_delay: float | None = None
        self.deliver: bool = True
        self.fraction: float = 1.0
        self.rate_limit_per_s: int | None = None
        self._balance: int | None = None
        self.markup: float = 0.0
        self.markup_ceiling: int | None = None
        self._hung: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._recent: deque[float] = deque()

    # ------------------------------------------------------------------ knobs

    def fail_next(
        self, n: int = 1, status: int = 500, *, after_accept: bool = True, on: str | None = None
    ) -> None:
        """Answer the next `n` requests (matching `on`) with HTTP `status`.

        after_accept=True: the request is processed first (an order is created) and the
        answer is then replaced by the error - the client cannot know the outcome.
        after_accept=False: the request is refused before anything happens.
        """
        if not 500 <= status <= 599:
            raise ValueError(f"fail_next injects server errors (5xx), got {status}")
        self._queue.extend(Injected("fail", status, after_accept, 0.0, on) for _ in range(n))

    def answer_next(
        self,
        body: bytes | str,
        *,
        status: int = 200,
        after_accept: bool = True,
        on: str | None = None,
        media_type: str = "application/json",
    ) -> None:
        """Answer the next request (matching `on`) with `status` and `body` as given.

        after_accept=True: the request is processed first (an order may be created) and
        its answer replaced, e.g. by `{"code": 9999, "msg": "UNKNOWN"}`; False: refused
        before anything happens.
        """
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status, got {status}")
        raw = body.encode() if isinstance(body, str) else body
        self._queue.append(Injected("answer", status, after_accept, 0.0, on, raw, media_type))

    def hang_next(
        self,
        n: int = 1,
        *,
        seconds: float = 3600.0,
        after_accept: bool = True,
        on: str | None = None,
    ) -> None:
        """Hold the answer to the next `n` requests for `seconds` of emulated time.

        after_accept=True: processed at once, answered late. after_accept=False: processed
        only when the hold ends (a late arrival). `release_hangs()` ends every hold now.
        """
        self._queue.extend(Injected("hang", 0, after_accept, seconds, on) for _ in range(n))

    def echo_credentials(self, n: int = 1, *, on: str | None = None) -> None:
        """Refuse the next `n` requests (matching `on`) before anything happens, with the
        vendor's error envelope and a message that quotes the request's credential headers
        (key, signature, timestamp): what a careless vendor's "invalid key ..." does."""
        self._queue.extend(Injected("echo", 400, False, 0.0, on) for _ in range(n))

    def slow_delivery(self, seconds: float) -> None:
        """Orders accepted from now on are delegated `seconds` after acceptance."""
        if seconds < 0:
            raise ValueError(f"delay must be >= 0, got {seconds}")
        self.delivery_delay = seconds

    def no_delivery(self, enabled: bool = True) -> None:
        """Orders accepted from now on are never delegated (they stay pending)."""
        self.deliver = not enabled

    def partial_delivery(self, fraction: float) -> None:
        """Orders accepted from now on get only `fraction` (0 < f <= 1) of their energy."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.fraction = fraction

    def rate_limit(self, n_per_s: int | None) -> None:
        """Allow at most `n_per_s` requests per emulated second (None: the vendor default)."""
        if n_per_s is not None and n_per_s < 0:
            raise ValueError(f"rate limit must be >= 0, got {n_per_s}")
        self.rate_limit_per_s = n_per_s

    def set_balance(self, sun: int) -> None:
        """Set the account balance (sun) at the emulator's next request or tick."""
        if sun < 0:
            raise ValueError(f"balance must be >= 0, got {sun}")
        self._balance = sun

    def charge_markup(self, fraction: float, *, ceiling: int | None = None) -> None:
        """Orders created from now on cost `fraction` (>= 0) more than the price list
        (and the quote) says: 0.5 charges 1.5 times the quote. 0 ends the move.
        `ceiling` (sun per energy unit for the whole order), when given, bounds the moved
        price (a price already above it is left as it is): a move "up to the price cap"."""
        if not 0.0 <= fraction <= 10.0:
            raise ValueError(f"markup must be in [0, 10], got {fraction}")
        if ceiling is not None and ceiling < 1:
            raise ValueError(f"ceiling must be >= 1 sun per energy, got {ceiling}")
        self.markup, self.markup_ceiling = fraction, ceiling

    def charged(self, sun: int, energy: int = 1) -> int:
        """`sun` (a price list's charge for `energy` units, or a unit price with the
        default `energy` of 1) after the markup, rounded up, within the ceiling."""
        if not self.markup:
            return sun
        moved = math.ceil(sun * (1.0 + self.markup))
        if self.markup_ceiling is not None:
            moved = min(moved, max(sun, self.markup_ceiling * energy))
        return moved

    def reset(self) -> None:
        """Clear every knob (a pending balance change is kept)."""
        self._queue.clear()
        self.markup, self.markup_ceiling = 0.0, None
        self.delivery_delay = None
        self.deliver = True
        self.fraction = 1.0
        self.rate_limit_per_s = None
        self.release_hangs()

    # ------------------------------------------------------------------ used by emulators

    @property
    def pending(self) -> int:
        """How many queued request faults are still to fire."""
        return len(self._queue)

    def take(self, op: str) -> Injected | None:
        """Pop the first queued fault that applies to operation `op`."""
        for i, fault in enumerate(self._queue):
            if fault.on is None or fault.on == op:
                return self._queue.pop(i)
        return None

    def take_balance(self) -> int | None:
        sun, self._balance = self._balance, None
        return sun

    def admit(self, now: float, default_limit: int | None) -> bool:
        """Count one request at `now`; False when over the limit for the last second."""
        limit = self.rate_limit_per_s if self.rate_limit_per_s is not None else default_limit
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if limit is not None and len(self._recent) >= limit:
            return False
        self._recent.append(now)
        return True

    def hold_event(self) -> asyncio.Event:
        """An event that `release_hangs()` sets, bound to the running loop."""
        event = asyncio.Event()
        self._hung.append((asyncio.get_running_loop(), event))
        return event

    def release_hangs(self) -> None:
        """End every hold now (also from another thread, e.g. before stopping a server)."""
        hung, self._hung = self._hung, []
        for loop, event in hung:
            if loop.is_closed():
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                event.set()
            else:
                loop.call_soon_threadsafe(event.set)
