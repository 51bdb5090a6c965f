"""Fault knobs of the emulated node: an outage, stale answers from a lagging node, junk.

`NodeFaults` is handed to `create_app(state, faults=...)` and switched while the node
serves (tests, the chaos suite):

- `outage(True)`: every `/wallet/*` and `/walletsolidity/*` request is answered HTTP 503
  (a node down behind its load balancer) until `outage(False)`;
- `freeze()`: the node stops following the chain. The first answer to each distinct
  request after the freeze is kept and replayed until `thaw()`: the head block stays
  where it was and an account looks as it did when first asked after the freeze, as
  from a node that lost its peers. `/control/*` is never affected;
- `junk(True)`: the account reads (`getaccountresource`, `getaccount`; `endpoints=` to
  choose) are answered HTTP 200 with a JSON body that is not an account at all
  (`{"status": "busy"}` by default), as from an overloaded node or a proxy in front of
  it, until `junk(False)`. A reader must take it as a failed read, never as zero energy.

`requests` counts the node requests seen, `refused` those answered 503, `junked` those
answered with junk. Neighbours:
`app.py` (consults the knobs per request), `sandbox/providers/faults.py` (the vendor
emulators' knobs).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

JUNK_BODY = b'{"status":"busy"}'
JUNK_ENDPOINTS = ("getaccountresource", "getaccount")


@dataclass
class NodeFaults:
    """The node's fault knobs; see the module docstring. Safe to switch at any time."""

    down: bool = False
    frozen: bool = False
    requests: int = 0
    refused: int = 0
    junk_on: frozenset[str] = frozenset()
    junk_body: bytes = JUNK_BODY
    junked: int = 0
    _replay: dict[tuple[str, str, bytes], bytes] = field(default_factory=dict, repr=False)

    def outage(self, enabled: bool = True) -> None:
        """Answer every node request with HTTP 503 (True) or serve again (False)."""
        self.down = enabled

    def freeze(self) -> None:
        """Serve stale answers from now on (see the module docstring)."""
        self.frozen = True

    def thaw(self) -> None:
        """Follow the chain again; the kept answers are dropped."""
        self.frozen = False
        self._replay.clear()

    def junk(
        self,
        enabled: bool = True,
        *,
        endpoints: Iterable[str] = JUNK_ENDPOINTS,
        body: bytes = JUNK_BODY,
    ) -> None:
        """Answer the `endpoints` (names under `/wallet/`) with HTTP 200 `body` (True),
        or answer them truthfully again (False)."""
        self.junk_on = frozenset(endpoints) if enabled else frozenset()
        self.junk_body = body

    def junk_for(self, path: str) -> bytes | None:
        """The junk body to send for request `path` instead of the answer, if any."""
        if self.junk_on and path.rstrip("/").rsplit("/", 1)[-1] in self.junk_on:
            self.junked += 1
            return self.junk_body
        return None

    def reset(self) -> None:
        self.outage(False)
        self.thaw()
        self.junk(False)

    def answer(self, key: tuple[str, str, bytes], fresh: bytes) -> bytes:
        """The body to send for `key`: `fresh`, or while frozen the first one kept."""
        if not self.frozen:
            return fresh
        return self._replay.setdefault(key, fresh)


__all__ = ["NodeFaults"]
