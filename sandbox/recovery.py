"""The recovery certificate: the windows with which a finished run proves the optimum's bound.

The hindsight program (`sandbox/optimum.py`) lets each draw of energy recover on its own,
linearly over a window (24 h by default, 6 s early). java-tron merges the recovery windows
of successive draws instead (`sandbox/tron_node/model.py`, `increase_v2`), and over a chain
of merges the node's usage can fall below the independent sum. The bound is proved for a
run whenever every transfer j's row of the program uses a window w_j for which condition
(R_j, w_j) holds on that run's own draws; this module checks it and finds, per transfer,
the largest w_j in (0, 24 h] for which it does.

(R_j, w), for one transfer j of an address: for every i <= j (the draws i..j-1),

    sum_{i <= k < j} p_k rho_w(t_j - t_k)
        <=  u_j + sum_{reclaims r: t_i <= s_r < t_j} m_r phi_j(s_r)

with p_k the energy transfer k drew from the pool, rho_w(d) = max(0, 1 - (d + 6 s) / w),
u_j the usage the node held for the address just before transfer j (`TransferRecord.
usage_before`), m_r the used energy reclaim r (an UnDelegateResource at time s_r) moved
away from the address (`ChainState.reclaims`), and phi_j(s) = max(0, 1 - (t_j - s) / 24 h)
(`DECAY`, whatever w): what a reclaim moved away counts only as much as would still be
used at t_j had it stayed (java-tron's merged windows are at most 24 h), which is what
the program's decayed credit for an ended rental allows. The left side grows with w, so the
windows where (R_j, w) holds form an interval (0, w_j*]; below 6 s the left side is 0,
so w_j* >= 6 s always. `certified_windows` returns each transfer's w_j (by bisection,
from below: every window returned passes its row's check), `certified_window` the
smallest (the one window that would serve every row of the address) and `check` the
largest excess (<= 0: it holds).

Where the windows never merge (one draw alive at a time) the node's usage is the
independent sum and (R_j, 24 h) holds with the 6 s to spare; short runs and sparse senders
certify 24 h on every row. A steady sender's merged window is about 12 h, and after bursts
it can be shorter, so a transfer late in a quiet spell after busy hours can need w_j of
12 h or less, while the busy hours' own transfers keep 24 h (the optimum's docstring and
docs/sandbox.md have the figures). The proof that these conditions make the program a
relaxation of the run is in `sandbox/optimum.py`. Neighbours: `sandbox/simulating.py`
(collects the draws and reclaims).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sandbox.optimum import DECAY, SLOT_ROUNDING, WINDOW  # below 6 s every rho_w is 0

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
    """The draws and reclaims of one address, arranged for (R_j, w) per transfer."""

    def __init__(self, draws: Sequence[Draw], reclaims: Iterable[Reclaim]) -> None:
        ordered = sorted(draws, key=lambda d: d.at)  # stable: same-time draws keep order
        self.t = np.asarray([d.at for d in ordered], dtype=float)
        self.p = np.asarray([d.drawn for d in ordered], dtype=float)
        self.u = np.asarray([d.usage_before for d in ordered], dtype=float)
        moved = sorted((r.at, r.moved) for r in reclaims)
        self.s = np.asarray([at for at, _ in moved], dtype=float)
        self.m = np.asarray([m for _, m in moved], dtype=float)
        # reclaims before each transfer time: count(s_r < t_j)
        self.before = np.searchsorted(self.s, self.t, side="left")
        self._taken: tuple[int, np.ndarray] | None = None

    def taken(self, j: int) -> np.ndarray:
        """For each i < j, sum over the reclaims r in [t_i, t_j) of m_r x max(0, 1 - (t_j -
        s_r) / W): what they moved away, as much as would still be used at t_j. It reads no
        window (w is only the draws'), so the bisection of row j computes it once."""
        if self._taken is not None and self._taken[0] == j:
            return self._taken[1]
        t = float(self.t[j])
        first = int(np.searchsorted(self.s, t - DECAY, side="right"))  # factor > 0 from here
        last = int(self.before[j])
        weights = self.m[first:last] * (1.0 - (t - self.s[first:last]) / DECAY)
        prefix = np.concatenate([[0.0], np.cumsum(weights)])  # reclaims first..first+k-1
        since = np.clip(self.before[:j] - first, 0, last - first)  # r >= i: from count(s < t_i)
        value: np.ndarray = prefix[-1] - prefix[since]
        self._taken = (j, value)
        return value

    def excess(self, j: int, window: float) -> float:
        """max over i of (program's usage of draws i..j-1) - (u_j + the decayed reclaims in
        [t_i, t_j)).

        Draws i older than t_j - w count 0; starting the sum earlier only adds reclaims.
        """
        lo = int(np.searchsorted(self.t, self.t[j] - window, "left"))
        if lo >= j:
            return -float(self.u[j])
        rho = 1.0 - (self.t[j] - self.t[lo:j] + SLOT_ROUNDING) / window
        usage = np.cumsum((self.p[lo:j] * np.maximum(rho, 0.0))[::-1])[::-1]  # from i on
        return float(np.max(usage - self.u[j] - self.taken(j)[lo:j]))

    def row(self, j: int, window: float) -> float:
        """The largest w <= `window` with (R_j, w) (bisection from below: it passes)."""
        if self.excess(j, window) <= 0:
            return window
        low, high = SLOT_ROUNDING, window  # holds at low (rho is 0), fails at high
        for _ in range(BISECTIONS):
            middle = (low + high) / 2
            if self.excess(j, middle) <= 0:
                low = middle
            else:
                high = middle
        return low

    def rows(self, window: float) -> np.ndarray:
        """Each transfer's largest window (time order), each at most `window`."""
        return np.asarray([self.row(j, window) for j in range(len(self.t))], dtype=float)


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
) -> dict[str, tuple[float, ...]]:
    """Each sender's certified windows (seconds), one per transfer in time order (a stable
    sort of the order made, as `sandbox/optimum.py` orders them); `reclaims` by receiver."""
    return {
        address: tuple(certified_windows(draws, reclaims.get(address, ())))
        for address, draws in draws_of(transfers).items()
    }


def certified_windows(
    draws: Sequence[Draw], reclaims: Iterable[Reclaim] = (), *, window: float = WINDOW
) -> list[float]:
    """Per transfer (in time order, stable), the largest w in [6 s, `window`] for which
    (R_j, w) holds on these draws (seconds)."""
    if not draws:
        return []
    return [float(w) for w in _Address(draws, reclaims).rows(window)]


def certified_window(
    draws: Sequence[Draw], reclaims: Iterable[Reclaim] = (), *, window: float = WINDOW
) -> float:
    """The largest w in [6 s, `window`] for which (R_j, w) holds at every transfer: the
    smallest of `certified_windows` (each row's set of windows is an interval)."""
    return min(certified_windows(draws, reclaims, window=window), default=window)


def check(
    draws: Sequence[Draw], reclaims: Iterable[Reclaim], window: float | Sequence[float]
) -> float:
    """The largest excess of (R_j, w_j) over the transfers, in energy: <= 0 when every row
    holds. `window`: one for every row, or one per transfer in time order."""
    if not draws:
        return 0.0
    address = _Address(draws, reclaims)
    windows = np.broadcast_to(np.asarray(window, dtype=float), address.t.shape)
    return max(address.excess(j, float(w)) for j, w in enumerate(windows))


__all__ = [
    "Draw",
    "Reclaim",
    "certified_window",
    "certified_windows",
    "check",
    "draws_of",
    "run_windows",
]
