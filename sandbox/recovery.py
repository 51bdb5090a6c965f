"""The recovery certificate: the window with which a finished run proves the optimum's bound.

The hindsight program (`sandbox/optimum.py`) lets each draw of energy recover on its own,
linearly over a window w (24 h by default, 6 s early). java-tron merges the recovery
windows of successive draws instead (`sandbox/tron_node/model.py`, `increase_v2`), and over
a chain of merges the node's usage can fall below the independent sum. The bound is
proved for a run whenever, for that run's own draws, condition (R_w) holds; this module
checks it and finds the largest w in (0, 24 h] for which it does.

(R_w), per address: for every transfer j and every i <= j (the draws i..j-1),

    sum_{i <= k < j} p_k rho_w(t_j - t_k)  <=  u_j + sum_{reclaims r: t_i <= s_r < t_j} m_r

with p_k the energy transfer k drew from the pool, rho_w(d) = max(0, 1 - (d + 6 s) / w),
u_j the usage the node held for the address just before transfer j (`TransferRecord.
usage_before`), and m_r the used energy reclaim r (an UnDelegateResource at time s_r)
moved away from the address (`ChainState.reclaims`). The left side grows with w, so the
set of windows where (R_w) holds is an interval (0, w*]; below 6 s the left side is 0,
so w* >= 6 s always. `certified_window` returns w* (by bisection, from below: the window
returned always passes the check) and `check` the largest excess (<= 0: it holds).

Where the windows never merge (one draw alive at a time) the node's usage is the
independent sum and (R_24h) holds with the 6 s to spare; short runs and sparse senders
certify 24 h. A steady sender's merged window is about 12 h, and after bursts it can be
shorter, so a quiet spell after busy hours can need w of 12 h or less (the optimum's
docstring and docs/sandbox.md have the figures). The
proof that (R_w) makes the program with window w a relaxation of the run is in
`sandbox/optimum.py`. Neighbours: `sandbox/simulating.py` (collects the draws and reclaims).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sandbox.optimum import SLOT_ROUNDING, WINDOW  # below 6 s every rho_w is 0

BISECTIONS = 40


@dataclass(frozen=True, slots=True)
class Draw:
    """One transfer as the certificate needs it."""

    at: float  # seconds
    drawn: int  # energy taken from the address's pool (p_j)
    usage_before: int  # the node's usage of the address just before (u_j)


@dataclass(frozen=True, slots=True)
class Reclaim:
    """One UnDelegateResource to the address: the used energy it moved to the owner."""

    at: float
    moved: int


class _Address:
    """The draws and reclaims of one address, arranged for (R_w) per transfer."""

    def __init__(self, draws: Sequence[Draw], reclaims: Iterable[Reclaim]) -> None:
        ordered = sorted(draws, key=lambda d: d.at)  # stable: same-time draws keep order
        self.t = np.asarray([d.at for d in ordered], dtype=float)
        self.p = np.asarray([d.drawn for d in ordered], dtype=float)
        self.u = np.asarray([d.usage_before for d in ordered], dtype=float)
        moved = sorted((r.at, r.moved) for r in reclaims)
        self.s = np.asarray([at for at, _ in moved], dtype=float)
        self.m = np.concatenate([[0.0], np.cumsum([m for _, m in moved], dtype=float)])
        # reclaims before each transfer time: m[count(s_r < t)]
        self.moved_before = self.m[np.searchsorted(self.s, self.t, side="left")]

    def excess(self, j: int, window: float) -> float:
        """max over i of (program's usage of draws i..j-1) - (u_j + reclaims in [t_i, t_j)).

        Draws i older than t_j - w count 0; starting the sum earlier only adds reclaims.
        """
        lo = int(np.searchsorted(self.t, self.t[j] - window, "left"))
        if lo >= j:
            return -float(self.u[j])
        rho = 1.0 - (self.t[j] - self.t[lo:j] + SLOT_ROUNDING) / window
        usage = np.cumsum((self.p[lo:j] * np.maximum(rho, 0.0))[::-1])[::-1]  # from i on
        taken = self.moved_before[j] - self.moved_before[lo:j]
        return float(np.max(usage - self.u[j] - taken))

    def largest(self, window: float) -> float:
        """The largest w <= `window` with (R_w) at every transfer (bisection from below)."""
        for j in range(len(self.t)):
            if self.excess(j, window) <= 0:
                continue
            low, high = SLOT_ROUNDING, window  # holds at low (rho is 0), fails at high
            for _ in range(BISECTIONS):
                middle = (low + high) / 2
                if self.excess(j, middle) <= 0:
                    low = middle
                else:
                    high = middle
            window = low
        return window


class TransferLike(Protocol):
    @property
    def at(self) -> float: ...
    @property
    def sender(self) -> str: ...
    @property
    def energy_used(self) -> int: ...
    @property
    def usage_before(self) -> int: ...


def draws_of(transfers: Iterable[TransferLike]) -> dict[str, list[Draw]]:
    """A run's transfers as draws, per sender, in the order they were made."""
    out: dict[str, list[Draw]] = {}
    for record in transfers:
        draw = Draw(record.at, record.energy_used, record.usage_before)
        out.setdefault(record.sender, []).append(draw)
    return out


def run_windows(
    transfers: Iterable[TransferLike], reclaims: Mapping[str, Sequence[Reclaim]]
) -> dict[str, float]:
    """Each sender's certified window (seconds) for a run; `reclaims` by receiver."""
    return {
        address: certified_window(draws, reclaims.get(address, ()))
        for address, draws in draws_of(transfers).items()
    }


def certified_window(
    draws: Sequence[Draw], reclaims: Iterable[Reclaim] = (), *, window: float = WINDOW
) -> float:
    """The largest w in [6 s, `window`] for which (R_w) holds on these draws (seconds)."""
    if not draws:
        return window
    return _Address(draws, reclaims).largest(window)


def check(draws: Sequence[Draw], reclaims: Iterable[Reclaim], window: float) -> float:
    """The largest excess of (R_w) over the transfers, in energy: <= 0 when (R_w) holds."""
    if not draws:
        return 0.0
    address = _Address(draws, reclaims)
    return max(address.excess(j, window) for j in range(len(address.t)))


__all__ = ["Draw", "Reclaim", "certified_window", "check", "draws_of", "run_windows"]
