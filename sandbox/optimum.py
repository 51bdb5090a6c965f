"""The hindsight optimum: the least a finished simulation's workload could have cost.

Given every transfer of a run (its time, sender and the energy it consumed), the chain's burn
price (`getEnergyFee`, read from the emulated node) and the market's catalogue
(`sandbox/market.py`: every vendor, duration, unit price and smallest order), `optimum()`
solves one linear program per address with SciPy's HiGHS interface (`scipy.optimize.linprog`
and `milp`) and returns:

- `lower_bound_sun`: the LP relaxation's optimum, a lower bound proved for every run: no
  policy, on any vendor, could have served that run's transfers for less on the emulated
  chain. Each transfer's row of its address's program lets usage recover over the window
  the run certifies for that transfer (`sandbox/recovery.py`: w_j = c_j x 24 h,
  0 < c_j <= 1; see "Why it is a bound");
- `milp_sun`: the same program with each vendor's order minimum as an integer condition
  (an order is 0 or at least the minimum), where HiGHS proves it optimal within
  `milp_time_limit` seconds per address; None otherwise. It is also a lower bound, tighter.

## The program (per address)

Transfers j = 0..n-1 at times t_j each consume E_j energy. Variables: b_j in [0, E_j], the
energy burned by transfer j (cost: burn price x b_j); x_{k,o} >= 0, energy rented under
type o (a vendor's duration d; in the LP the cheapest vendor for d) "placed at candidate
k", active for the transfers k..last(k, o), those with t_i <= t_k + d + margin. The energy
drawn from the pool is p_j = E_j - b_j, and the usage left at t_j by earlier draws is
U_j = sum_{i<j} p_i * rho_j(t_j - t_i), rho_j(delta) = max(0, 1 - (delta + 6 s) / w_j),
w_j row j's recovery window (`window`: one for every row or one per transfer, each in
(0, 24 h]; in a run, the window the certificate gives transfer j). C_{j,L} >= 0
(cumulative in L) is the usage that rentals whose last covered transfer is at most L < j
took away, as seen by transfer j. For each j:

    p_j + U_j - C_{j,Lmax} <= (1 + eps) * sum_{(k,o) active at j} x_{k,o}          (capacity)
    0 <= C_{j,L} - C_{j,L'} <= (1 + eps) * delta_{j,L} * sum_{last(k,o) = L} x_{k,o}  (ended)
    C_{j,L} <= sum_{i <= L} p_i * rho_j(t_j - t_i)                      (usage it could take)

(L' the previous L, Lmax the last L < j), with the reclaim's decay

    delta_{j,L} = max(0, 1 - (t_j - t_{L+1}) / W),   W = 24 h (`DECAY`, the same for every row)

a rental that ends at L is taken back by the chain after t_L, and what it takes away would
have recovered anyway: seen from t_j, used energy moved away at s <= t_j is worth at most
(1 - (t_j - s) / 24 h) of it, since java-tron's merged windows are at most 24 h; t_{L+1}
is the latest such s can be (see "Reclaims" below for the precise use). delta_{j,L} reads
no row window, is 1 for L = j - 1 and is non-decreasing in L. Cost: burn price x sum b_j +
sum price x x_{k,o}. A type dominated at candidate k by a longer one, no dearer, with no
larger minimum is left out (the longer one covers more and, while active, gives more than
the credit it replaces, since delta <= 1; after, it ends no earlier and delta is
non-decreasing in L); so is a rental (k', o') when another (k, o) with k <= k' covers up to
the same last transfer, no dearer, with no larger minimum (moving its amount there keeps
every row feasible: more capacity while active, and the same credits after).

For speed the program is solved in an equivalent, sparser form (`_Program`): the sums that
repeat across rows are auxiliary columns tied by equalities, and the chain C_{j,L} is
replaced by its largest value, one C_j per transfer with, for each L of j's chain (the
ends L < j with t_j - t_L < w_j),
C_j <= (usage of draws <= L) + (1 + eps) x (rentals ending after L, before j), and
C_j <= (1 + eps) x (all of the chain's ending rentals), each rental counted times
delta_{j,L'} of its last L' (> 0 there: t_j - t_{L'+1} <= t_j - t_{L'} < w_j <= W): the
cumulative chain reaches exactly the minimum of these (greedily, since the usage caps grow
with L; for L older than the chain they are 0), so the optimum is unchanged. delta is
affine in t_j, delta_{j,L} = (1 - tau_j) + tau_{L+1} (tau in units of W since the first
transfer), so these sums are read off two prefix sums over the ends, PE_L (the amount of
the rentals whose last is at most L) and PT_L (the same, each times tau of the transfer
after its last), with row j's own coefficient 1 - tau_j. Row j's weights
rho_j(t_j - t_i) = a_j + g_j tau_i (tau_i: days since the first transfer, g_j = 24 h / w_j,
a_j = 1 - 6 s / w_j - g_j tau_j) let the usage of a run of draws be read off two shared
prefix sums (of b_i and of tau_i b_i) with row j's own coefficients. The part of C_j's
caps that all of them share, (1 + eps) x (every rental ending before j, times delta), moves
to j's capacity row: the column is Z_j = C_j less that part, free (C_j >= 0 is implied:
every cap is >= 0, and a larger C_j only loosens the capacity row), so each cap reads two
prefix sums at its own L and no more. HiGHS's interior point (with crossover) solves it;
a week of one address at 4 transfers an hour took ~1.6 s on an idle machine before the
decayed credit and the finer TronSave grid, and takes about 1.1-1.2 times as long now
(bench/optimum.py, run alternately with the earlier version under load).

## Why it is a bound on every run

**Theorem.** Take any run of the simulator and one of its addresses; give each transfer j
a window w_j = c_j x 24 h, 0 < w_j <= 24 h, for which condition (R_j, w_j) below holds on
the run's own draws (the certificate: `sandbox/recovery.py` finds, per transfer, the
largest, approached from below, so that each window it returns passes its row's check).
Then the program whose row j recovers over w_j costs at most what the run spent serving
that address's transfers (its orders' prices and the TRX its transfers burned). Summed
over the addresses, `lower_bound_sun` is at most the run's cost.

(R_j, w), for one transfer j: for every i <= j,

    sum_{i <= k < j} p_k rho_w(t_j - t_k)
        <=  u_j + sum_{reclaims r: t_i <= s_r < t_j} m_r phi_j(s_r)

where p_k is the energy transfer k took from the pool (its receipt), u_j the usage the
node held for the address just before transfer j (`TransferRecord.usage_before`, decayed
as the node decays it for the call), m_r the used energy a reclaim r (an
UnDelegateResource to the address at time s_r) moved away (`ChainState.reclaims`), and
phi_j(s) = max(0, 1 - (t_j - s) / W) with W = 24 h, whatever w (what was moved away
would have recovered by t_j at least that much: the node's merged windows are at most
24 h). It is
a property of what the run did, checked after it: the **certificate**, one per transfer.
For a fixed j its left side grows with w and is 0 for w <= 6 s, so the windows where it
holds form an interval (0, w_j*] with w_j* >= 6 s; one window for every row of the
address (the condition for all j at once) can be at most min_j w_j*.

**Rows are independent.** Every constraint that reads a window belongs to one transfer j
and reads w_j only: the capacity row of j, and j's own chain C_{j,L} (its "what ended"
and "usage it could take" rows; in the sparse form the caps of the column C_j, which
appears in no other transfer's rows), over j's ends (t_j - t_L < w_j) and the draws alive
at t_j. The columns that rows of different transfers share (b, x, and in the sparse form
S, PE, PT, QB, RB) enter no row with a window of their own: S and PE are sums of rental
amounts, PT the same each times tau_{L+1} (W = 24 h fixed, not a row's window), QB and RB
prefix sums of b_i and tau_i b_i with tau_i in days, the same for every row, tied by
equalities that read no window; each row turns them into its own weights with its own
a_j and g_j (and 1 - tau_j for the decay). The pruning of dominated columns holds row by row, for
any window in each row. So the proof below is stated for one transfer's rows at a time,
and they use (R_j, w_j) only; no part needs a window shared between transfers.

**Proof.** Map the run into the program (the map) and show that the mapped plan (a) costs
no more than the run and (b) meets every row j of the program with window w_j; the LP's
optimum is then at most its cost.

(a) *Cost.* An order delivered in (t_{k-1}, t_k] (before the first transfer: k = 0) of
duration d maps to candidate k: the program treats it as present from t_{k-1} on (earlier
than the chain) until t_k + d + margin, `margin` (600 s) covering the delivery delay and
the emulators' expiry tick (later than the chain). An order for which no transfer comes
is dropped (it only costs). Its price is the lowest that vendor asked for that duration
or any longer one (`PriceBook.lowest`) at any time it could have been placed: from
t_{k-1} - 2 x margin (k = 0: the run's start) to t_k, so a price drift cannot make the
program pay more than the engine did (TronSave: the SLOW price, the lowest it accepts;
its orders of any length beyond a day stand on a grid of durations, each priced as the
shortest order it represents, `market.tronsave_grid`). Amounts are continuous and
minimums ignored in the LP (the MILP keeps them). Durations stop at the first one that
outlasts the workload (`rental_types`); a longer order serves no more. The chain burns
exactly the fee per missing energy (`pay_energy`): b_j, so p_j = E_j - b_j is what the
pool gave. The map does not depend on the windows. The pruned columns (dominated types
and rentals, above) only move amounts to columns no dearer and keep every row feasible,
whatever each row's window.

(b) *Feasibility of row j.* The burn bounds hold. Give C_j the largest value its rows
allow (each cap is >= 0); the capacity row then reads p_j + D_j <= (1 + eps) S_j, with
S_j the amount of the rentals active at j and

    D_j = max(0, max_L [ sum_{L < k < j} p_k rho_j(t_j - t_k) - (1 + eps) E(L, j) ])

over L = -1 and the ends L < j, E(L, j) = sum_{L < L' < j} delta_{j,L'} x (the amount of
the rentals whose last covered transfer is L'). (The program has rows for the ends within
w_j of t_j and one total row; the total row states the term of the newest end L* before
t_j - w_j, or of L = -1, since the draws up to L* count 0 at t_j, and older ends' terms are
at most that one, delta being >= 0.)

- *Capacity on the chain.* The pool gives first, so p_j <= limit_j - u_j. limit_j is the
  energy of the delegations present at t_j; the node sizes a delegation in whole TRX of
  stake, so the receiver may gain a little more than it paid for: a delegation gives at
  most (1 + eps) x its rental's amount (`eps` = energy per TRX of stake / 10,000). Every
  rental present at t_j is active at j in the program (the margins above); S_j also
  counts A_j, the rentals active at j that the chain has already reclaimed. So
  p_j + u_j <= (1 + eps) (S_j - A_j).
- *Reclaims.* A rental placed at candidate k is reclaimed at s_r <= t_k + d + margin, so
  t_i <= s_r implies i <= last(k, o): the program keeps it active at least until its
  reclaim. Precisely, with L(r) the last transfer at or before s_r (t_{L(r)} <= s_r <
  t_{L(r)+1}), the rental's last covered transfer L_r is >= L(r). Its reclaims move
  sum m_r <= its stakes' energy <= (1 + eps) x_r, x_r its amount
  (`model.undelegate_transfer`: the receiver's usage times the stake's share, capped at
  the stake's energy).
- *Decay.* For a reclaim r with s_r < t_j and L_r < j: delta is non-decreasing in L and
  t_{L(r)+1} > s_r (L(r) + 1 <= j, as s_r < t_j), so
  delta_{j,L_r} >= delta_{j,L(r)} = max(0, 1 - (t_j - t_{L(r)+1}) / W)
  >= max(0, 1 - (t_j - s_r) / W) = phi_j(s_r).
  So the rental's reclaims count at most sum m_r phi_j(s_r) <= (1 + eps) x_r delta_{j,L_r}
  in (R_j): its term in (1 + eps) E(., j). (Its program last may be later than L(r), so the
  certificate's factor is the one of s_r, the smallest over the L_r it may have.)
- *Recovery.* Take a term L of D_j and i = L + 1 in (R_j, w_j). The reclaims it counts
  happened in [t_{L+1}, t_j), so L(r) >= L + 1, and end rentals with last L_r >= L + 1:
  those with L_r < j are in E(L, j), each counted at least as much there (Decay), the
  others are active at j (placed no later than the reclaim, so at a candidate <= j) and in
  A_j, where phi_j <= 1 suffices. So the term is at most u_j + (1 + eps) A_j, and so is 0.
  Hence p_j + D_j <= p_j + u_j + (1 + eps) A_j <= (1 + eps) S_j.

Every row holds, each by its own condition; QED.

**Monotone in each w_j.** rho_j grows with w_j, so every term of D_j does, and no other
row reads w_j: a shorter window for row j only loosens row j, the feasible set grows and
the optimum can only go down. So the bound is non-decreasing in each w_j separately. With
the certified windows it is never above the 24 h program's optimum (equal where every
c_j = 1), and never below the bound with one window per address (min_j w_j* in every
row, each row's certified window being at least that); it is above it wherever a row
that keeps a longer window binds (tests/sandbox/test_recovery.py has such a case).

**Why a window below 24 h is sometimes needed.** The program lets each draw recover on
its own; java-tron merges windows (`model.increase_v2`): after a draw the address holds
one usage U that falls linearly to 0 over one window W, the usage-weighted average of
the remaining windows (U x W = sum_i U_i x W_i, W <= 24 h). Where no two draws are alive
at once the node's usage is the independent sum and (R_j, 24 h) holds with the 6 s to spare
(the 6 s absorb the slot rounding, which u_j includes). After a merge it can fail late
in a quiet spell, because the merged usage reaches 0 at W, before the parts with the
longest remaining windows. Example: 100k energy drawn at 0 h and 100k at 12 h; at 12 h
U = 150k, W = 20 h; the independent sum is 100k (1 - d / 24 h) once the first part is
gone, the merged 150k (1 - d / 20 h) (d: hours since 12 h); they cross at d = 15 h, so
a transfer at d = 20 h sees 0 on the chain against 16.7k in the 24 h program, and its
(R_j, w) holds only for w <= 20 h + 6 s (c_j = 0.8334; the two earlier transfers keep
24 h; tests/sandbox/test_recovery.py). The same
happens at scale: an address drawing every D holds a merged window of about
(24 h + D) / 2 (12.4 h at one draw per 48 min), at about the independent sum's level, but
then falls to 0 in those 12 h where the independent sum takes 24 h; and draws merged into
a large older usage inherit much of its short remaining window. So a quiet night after
busy hours needs c_j near 1/2 or less for the transfers of that night, while the busy
hours' own transfers (all merged parts alive: the merged usage is at least the
independent sum) keep 24 h. Short runs and sparse senders keep c_j = 1; in the week-long
bench runs (docs/sandbox.md; measured before the decayed credit and the finer TronSave
grid) 12-19 % of the transfers certify c_j < 1 (the smallest 0.31-0.59, the median 1), and
the bound is within 0.002-0.12 % of the 24 h program's optimum (one window per address,
the smallest row's, left it 2.4-6.4 % below). The
property test (tests/sandbox/test_optimum.py) runs 200 random workload/policy pairs, a
tenth of them built to merge, checks (R_j, w_j) independently on every row with the
window that row used (the reclaims' factor phi_j included), and that no run costs less
than the bound.

## A reference without foresight

The program knows when every transfer comes and how much it takes: its plans keep the
address drained right up to each transfer. A policy that reads the chain cannot: to burn
nothing whichever transfer comes next, it must hold `reserve` (the largest a transfer
takes, 131k to an address without USDT) free at every moment, in particular just before
each transfer. `reserve` > 0 states exactly that in the same program: the burns are fixed
at 0 and row j asks for max(E_j, reserve) free before transfer j (its capacity row's
constant), everything else unchanged (same rentals, prices, recovery windows and
credits). Its optimum is the least any policy *of that kind* could have paid for the
run's transfers: a reference for what the lack of foresight costs, not a bound on a run
that let its free energy fall below `reserve` (that run is not of the kind, and may cost
less by burning). The MILP is not solved for it.

Everything is solved in units of 1,000 energy and TRX, and the reported bound is rounded
down. Neighbours: `sandbox/simulating.py` (runs), `sandbox/reporting.py` (the report).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix

from sandbox.market import Offer, PriceBook

WINDOW = 86_400.0
DECAY = WINDOW  # W: java-tron's merged recovery windows are at most 24 h (a reclaim's credit)
SLOT_ROUNDING = 6.0  # seconds of recovery granted early (two 3-s slots)
MARGIN = 600.0  # delivery delay and expiry tick, granted to every rental
UNIT = 1000.0  # energy per program unit
TRX = 1_000_000
LP_METHOD = "highs-ipm"  # interior point (then crossover): the fastest here on a week (bench)


class TransferLike(Protocol):
    @property
    def at(self) -> float: ...
    @property
    def sender(self) -> str: ...
    @property
    def energy_total(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Rental:
    vendor: str
    duration: int
    at: float
    energy: float
    cost_sun: float


@dataclass(slots=True)
class AddressOptimum:
    address: str
    transfers: int
    lower_bound_sun: int
    milp_sun: int | None
    lp_seconds: float
    rentals: list[Rental] = field(default_factory=list)  # the LP's plan (for the chart)
    burns: list[tuple[float, float]] = field(default_factory=list)  # (time, sun) in the plan
    windows: tuple[float, ...] = ()  # each row's recovery window w_j (seconds), time order

    @property
    def window(self) -> float:
        """The shortest row window (seconds; 24 h without transfers)."""
        return min(self.windows, default=WINDOW)

    @property
    def recovery_factor(self) -> float:
        """The smallest c_j = w_j / 24 h: 1 unless the certificate shortened some row."""
        return self.window / WINDOW


@dataclass(slots=True)
class Optimum:
    energy_fee: int
    addresses: dict[str, AddressOptimum]
    seconds: float

    @property
    def lower_bound_sun(self) -> int:
        return sum(a.lower_bound_sun for a in self.addresses.values())

    def row_factors(self) -> np.ndarray:
        """Every row's c_j = w_j / 24 h, over all addresses."""
        rows = [w for a in self.addresses.values() for w in a.windows]
        return np.asarray(rows, dtype=float) / WINDOW

    @property
    def recovery_factor(self) -> float:
        """The smallest c_j = w_j / 24 h over every row (1.0: every row at 24 h)."""
        return float(self.row_factors().min(initial=1.0))

    @property
    def short_rows(self) -> float:
        """The share of rows (transfers) whose window is below 24 h."""
        factors = self.row_factors()
        return float(np.mean(factors < 1.0)) if len(factors) else 0.0

    @property
    def median_factor(self) -> float:
        """The median c_j over every row (1.0 without rows)."""
        factors = self.row_factors()
        return float(np.median(factors)) if len(factors) else 1.0

    @property
    def milp_sun(self) -> int | None:
        values = [a.milp_sun for a in self.addresses.values()]
        return None if any(v is None for v in values) else sum(v or 0 for v in values)

    def cumulative(self, times: Sequence[float]) -> list[int]:
        """The LP plan's cumulative cost (rentals when placed, burns when made) at `times`."""
        events: list[tuple[float, float]] = []
        for a in self.addresses.values():
            events += [(r.at, r.cost_sun) for r in a.rentals] + a.burns
        events.sort()
        out, total, i = [], 0.0, 0
        for t in times:
            while i < len(events) and events[i][0] <= t:
                total += events[i][1]
                i += 1
            out.append(int(total))
        return out


def _rho(delta: float, window: float = WINDOW) -> float:
    return max(0.0, 1.0 - (delta + SLOT_ROUNDING) / window)


@dataclass(frozen=True, slots=True)
class _Type:
    vendor: str  # "" in the LP: the cheapest vendor at each time
    duration: int
    min_amount: int


def rental_types(offers: Iterable[Offer], horizon: float) -> tuple[list[_Type], list[_Type]]:
    """(LP types, MILP types): the durations useful within `horizon` seconds.

    Per vendor, an offer longer than the horizon serves no more than the shortest one that
    outlasts it, so durations stop there; each type is priced as the vendor's cheapest offer
    at least as long (`PriceBook.lowest`). The LP ignores minimums, so it needs one type
    per duration (priced at the cheapest vendor); the MILP keeps one per vendor.
    """
    by_vendor: dict[str, list[Offer]] = {}
    for offer in offers:
        by_vendor.setdefault(offer.vendor, []).append(offer)
    milp_types: list[_Type] = []
    for vendor, items in sorted(by_vendor.items()):
        for offer in sorted(items, key=lambda o: o.duration):
            milp_types.append(_Type(vendor, offer.duration, offer.min_amount))
            if offer.duration >= horizon:
                break
    durations = sorted({item.duration for item in milp_types})
    lp_types = [_Type("", d, min(o.min_amount for o in milp_types)) for d in durations]
    return lp_types, milp_types


def solve_address(
    address: str,
    times: Sequence[float],
    energies: Sequence[int],
    book: PriceBook | Sequence[Offer],
    *,
    energy_fee: int,
    eps: float = 0.0,
    milp_time_limit: float | None = 5.0,
    since: float | None = None,
    window: float | Sequence[float] = WINDOW,
    reserve: int = 0,
) -> AddressOptimum:
    """The program of the module docstring for one address's transfers (sorted by time).

    `reserve` (energy, default 0): the reference program of "A reference without foresight"
    instead: nothing burned, and at least `reserve` free before every transfer.

    `since`: when orders could first be placed (the run's start); default: the first
    transfer's time less two margins. `window`: the program's recovery window in seconds,
    one for every row or one per transfer (row j's w_j), each in (0, 24 h]: a run's
    certified windows (`sandbox/recovery.py`).
    """
    n = len(times)
    windows = _row_windows(window, n)
    started = time.perf_counter()
    if not isinstance(book, PriceBook):
        book = PriceBook(book)
    if n == 0:
        return AddressOptimum(address, 0, 0, 0, 0.0)
    horizon = times[-1] - times[0] + 1.0
    lp_types, milp_types = rental_types(book.offers, horizon)
    vendors = sorted({o.vendor for o in book.offers})
    first = times[0] - 2 * MARGIN if since is None else min(since, times[0])
    placed = [(first if k == 0 else times[k - 1] - 2 * MARGIN, times[k]) for k in range(n)]

    def price(kind: _Type, k: int) -> tuple[float, str]:
        lo, hi = placed[k]
        if kind.vendor:
            return book.lowest(kind.vendor, kind.duration, lo, hi), kind.vendor
        return min((book.lowest(v, kind.duration, lo, hi), v) for v in vendors)

    lp_costs = [[price(kind, k) for kind in lp_types] for k in range(n)]
    lower, plan, burned = _solve(
        times, energies, lp_types, lp_costs, energy_fee, eps, windows, integer=False,
        reserve=reserve,
    )  # fmt: skip
    milp_value: int | None = None
    if milp_time_limit is not None and milp_time_limit > 0 and not reserve:
        milp_costs = [[price(kind, k) for kind in milp_types] for k in range(n)]
        value, _, _ = _solve(
            times, energies, milp_types, milp_costs, energy_fee, eps, windows, integer=True,
            time_limit=milp_time_limit,
        )  # fmt: skip
        milp_value = None if value is None else max(int(value), int(lower or 0))
    bound = 0 if lower is None else math.floor(lower * (1 - 1e-7))
    rentals = [
        Rental(vendor, kind.duration, at, amount * UNIT, amount * UNIT * unit)
        for (at, kind, vendor, unit, amount) in plan
    ]
    burns = [(times[j], b * UNIT * energy_fee) for j, b in enumerate(burned) if b > 1e-9]
    seconds = time.perf_counter() - started
    return AddressOptimum(
        address, n, bound, milp_value, seconds, rentals, burns, tuple(float(w) for w in windows)
    )


def _row_windows(window: float | Sequence[float], n: int) -> np.ndarray:
    """The windows of the n rows: one for all, or one each; each in (0, 24 h]."""
    given = np.asarray(window, dtype=float)
    windows = np.full(n, float(given)) if given.ndim == 0 else given
    if windows.shape != (n,):
        raise ValueError(f"{given.size} recovery windows for {n} transfers")
    for value in (given,) if given.ndim == 0 else windows:
        if not 0 < value <= WINDOW:
            raise ValueError(f"the recovery window must be in (0, {WINDOW:g}] seconds, not {value}")
    return windows


Plan = list[tuple[float, _Type, str, float, float]]  # (at, type, vendor, unit cost, energy)


def _solve(
    times: Sequence[float],
    energies: Sequence[int],
    offers: Sequence[_Type],
    costs: Sequence[Sequence[tuple[float, str]]],
    energy_fee: int,
    eps: float,
    windows: np.ndarray,
    *,
    integer: bool,
    time_limit: float | None = None,
    reserve: int = 0,
) -> tuple[float | None, Plan, list[float]]:
    program = _Program(times, energies, offers, costs, energy_fee, eps, windows, reserve)
    return program.solve_milp(time_limit) if integer else program.solve_lp()


def _kept_types(offers: Sequence[_Type], prices: Sequence[tuple[float, str]]) -> list[int]:
    """Types on sale at a candidate, less those a longer, no dearer type with no larger
    minimum dominates (it covers more and, while active, gives more than a credit)."""
    order = sorted(range(len(offers)), key=lambda i: (offers[i].duration, i), reverse=True)
    kept: list[int] = []
    seen: dict[int, float] = {}  # min amount -> lowest cost among longer types
    for index in order:
        offer, price = offers[index], prices[index][0]
        if not math.isfinite(price):
            continue  # not on sale then
        if any(m <= offer.min_amount and c <= price for m, c in seen.items()):
            continue
        seen[offer.min_amount] = min(price, seen.get(offer.min_amount, math.inf))
        kept.append(index)
    return sorted(kept)


class _Program:
    """The sparse program of the module docstring for one address.

    Columns b | x | C | S | QB | RB | PE | PT. C_j is the chain's largest credit at j (module
    docstring). The sums that would repeat across rows are auxiliary columns tied by
    equalities (same optimum, far fewer nonzeros): S_j, the amount of the rentals active
    at j (S_j = S_{j-1} + those starting at j - those whose last covered transfer is
    j - 1); PE_L, the amount of the rentals whose last is at most L; PT_L, the same each
    times tau'_{L'+1} = (t_{L'+1} - t_0) / W of its last L' (the reclaim's decay
    delta_{j,L'} = 1 - tau'_j + tau'_{L'+1}, read by row j as (1 - tau'_j) PE + PT); QB_L
    and RB_L, prefix sums of b_i and b_i tau_i (tau = days since the first transfer), so
    that, with row j's window w_j and g_j = 24 h / w_j,
    sum_{s <= i <= L} rho_{w_j}(t_j - t_i) b_i = a_j (QB_L - QB_{s-1}) + g_j (RB_L - RB_{s-1})
    with a_j = 1 - (6 s) / w_j - g_j tau_j, for s the first draw whose rho at t_j is positive
    (rho_w(t_j - t_i) = a_j + g_j tau_i). Every column is defined by equalities that do
    not involve any window (S, PE, PT, QB, RB: sums of b and x); only row j's own rows (its
    capacity row and C_j's caps) read w_j.
    """

    def __init__(
        self,
        times: Sequence[float],
        energies: Sequence[int],
        offers: Sequence[_Type],
        costs: Sequence[Sequence[tuple[float, str]]],
        energy_fee: int,
        eps: float,
        windows: np.ndarray,
        reserve: int = 0,
    ) -> None:
        self.n = n = len(times)
        self.reserve = reserve / UNIT  # free before every transfer, nothing burned (0: off)
        self.w = w = np.asarray(windows, dtype=float)  # row j's recovery window
        self.t = t = np.asarray(times, dtype=float)
        self.need = np.asarray(energies, dtype=float) / UNIT
        self.offers, self.costs, self.eps = offers, costs, eps
        # rentals: (candidate k, type) -> column; active over transfers k..last(k, type)
        by_last: dict[int, list[tuple[int, float, int, int]]] = {}  # (k, price, min, type)
        for k in range(n):
            kept = _kept_types(offers, costs[k])
            ends = t[k] + np.asarray([offers[i].duration for i in kept], dtype=float) + MARGIN
            lasts = np.searchsorted(t, ends, side="right") - 1
            for i, last in zip(kept, lasts, strict=True):
                item = (k, costs[k][i][0], offers[i].min_amount, i)
                by_last.setdefault(int(last), []).append(item)
        self.x_cols: list[tuple[int, int, int]] = []  # (k, type index, last index covered)
        for last, items in by_last.items():
            seen: dict[int, float] = {}  # min amount -> lowest price placed no later
            for k, price, least, i in sorted(items):
                if any(m <= least and c <= price for m, c in seen.items()):
                    continue  # one placed no later, ending with it, no dearer: dominates
                seen[least] = min(price, seen.get(least, math.inf))
                self.x_cols.append((k, i, last))
        self.x_cols.sort()
        self.ending: dict[int, list[int]] = {}  # last index covered -> rental columns
        for col, (_, _, last) in enumerate(self.x_cols):
            if last < n - 1:
                self.ending.setdefault(last, []).append(col)
        ends = np.asarray(sorted(self.ending), dtype=int)
        # the L < j whose rentals may take usage back at t_j: t_j - t_L < w_j
        self.chain: list[np.ndarray] = []
        self.chain_start = np.searchsorted(t, t - w, side="right")
        for j in range(n):
            self.chain.append(ends[(ends < j) & (ends >= self.chain_start[j])])
        # first draw with rho_{w_j}(t_j - t_i) > 0: t_j - t_i + 6 < w_j
        self.first_live = np.searchsorted(t, t - w + SLOT_ROUNDING, side="right")
        self.tau = (t - t[0]) / WINDOW  # days: the same for every row
        self.g = WINDOW / w
        self.nb, self.nx = n, len(self.x_cols)
        self.c0 = self.nb + self.nx
        self.s0, self.qb0, self.rb0, self.pe0, self.pt0 = (self.c0 + n * m for m in range(1, 6))
        self.nvar = self.pt0 + n
        # t_{L+1} in decay windows since the first transfer (the last L ends nothing)
        self.next_tau = np.append(t[1:] - t[0], 0.0) / DECAY
        self.cost = np.zeros(self.nvar)
        self.cost[: self.nb] = energy_fee * UNIT / TRX
        for col, (k, index, _) in enumerate(self.x_cols):
            self.cost[self.nb + col] = costs[k][index][0] * UNIT / TRX
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.upper: list[float] = []
        self.eq_rows: list[int] = []
        self.eq_cols: list[int] = []
        self.eq_vals: list[float] = []
        self.n_eq = 0
        self._build()

    def _row(self, terms: Iterable[tuple[int, float]], bound: float) -> None:
        row = len(self.upper)
        for col, value in terms:
            self.rows.append(row)
            self.cols.append(col)
            self.vals.append(value)
        self.upper.append(bound)

    def _eq(self, terms: Iterable[tuple[int, float]]) -> None:
        """sum terms == 0"""
        for col, value in terms:
            self.eq_rows.append(self.n_eq)
            self.eq_cols.append(col)
            self.eq_vals.append(value)
        self.n_eq += 1

    def _weighted(self, j: int, last: int, sign: float) -> tuple[list[tuple[int, float]], float]:
        """sign x sum_{s_j <= i <= last} rho_{w_j}(t_j - t_i) b_i as terms, and the same sum
        of rho_{w_j}(t_j - t_i) E_i (a constant)."""
        s = int(self.first_live[j])
        if last < s:
            return [], 0.0
        g = float(self.g[j])
        a = 1.0 - SLOT_ROUNDING / float(self.w[j]) - g * float(self.tau[j])
        terms = [(self.qb0 + last, sign * a), (self.rb0 + last, sign * g)]
        if s > 0:
            terms += [(self.qb0 + s - 1, -sign * a), (self.rb0 + s - 1, -sign * g)]
        f = a + g * self.tau[s : last + 1]
        return terms, float(np.dot(f, self.need[s : last + 1]))

    def _build(self) -> None:
        n, nb, eps = self.n, self.nb, self.eps
        starting: list[list[int]] = [[] for _ in range(n)]
        for col, (k, _, _) in enumerate(self.x_cols):
            starting[k].append(col)
        for j in range(n):
            # S_j = S_{j-1} + starting at j - ended at j - 1 (PE_{j-1} - PE_{j-2})
            terms = [(self.s0 + j, 1.0)] + [(nb + col, -1.0) for col in starting[j]]
            if j > 0:
                terms += [(self.s0 + j - 1, -1.0), (self.pe0 + j - 1, 1.0)]
            if j > 1:
                terms.append((self.pe0 + j - 2, -1.0))
            self._eq(terms)
            # QB_j = QB_{j-1} + b_j, RB_j = RB_{j-1} + tau_j b_j
            q = [(self.qb0 + j, 1.0), (j, -1.0)]
            r = [(self.rb0 + j, 1.0), (j, -float(self.tau[j]))]
            if j > 0:
                q.append((self.qb0 + j - 1, -1.0))
                r.append((self.rb0 + j - 1, -1.0))
            self._eq(q)
            self._eq(r)
        for j in range(n):
            # PE_j = PE_{j-1} + the rentals whose last covered transfer is j
            pe = [(self.pe0 + j, 1.0)] + [(nb + c, -1.0) for c in self.ending.get(j, [])]
            if j > 0:
                pe.append((self.pe0 + j - 1, -1.0))
            self._eq(pe)
            # PT_j = PT_{j-1} + tau'_{j+1} x the rentals whose last is j (PE_j - PE_{j-1})
            later = float(self.next_tau[j])
            pt = [(self.pt0 + j, 1.0), (self.pe0 + j, -later)]
            if j > 0:
                pt += [(self.pt0 + j - 1, -1.0), (self.pe0 + j - 1, later)]
            self._eq(pt)
        for j in range(n):
            # capacity: (E_j - b_j) + sum rho (E_i - b_i) - C_j - (1+eps) S_j <= 0, with
            # C_j = Z_j + (1+eps) x (every rental ending before j, times delta_{j,L})
            weighted, const = self._weighted(j, j - 1, -1.0)
            terms = [(j, -1.0), (self.s0 + j, -(1.0 + eps)), (self.c0 + j, -1.0), *weighted]
            if len(self.chain[j]):
                terms += [(col, -value) for col, value in self._ended(j, j - 1)]
            before = max(self.need[j], self.reserve)  # what must be free before j
            self._row(terms, -(before + const))
            self._credit_rows(j)

    def _ended(self, j: int, after: int) -> list[tuple[int, float]]:
        """(1+eps) x sum_{L <= after} delta_{j,L} x (rentals whose last is L) as terms (for
        after < j): delta_{j,L} = 1 - (t_j - t_{L+1}) / W = (1 - tau_j) + tau_{L+1} (tau in
        W since the first transfer), read off PE and PT with row j's own coefficient."""
        if after < 0:
            return []
        grow = 1.0 + self.eps
        a = 1.0 - float(self.t[j] - self.t[0]) / DECAY
        return [(self.pe0 + after, grow * a), (self.pt0 + after, grow)]

    def _credit_rows(self, j: int) -> None:
        """C_j <= (1+eps) x (the chain's ending rentals, each times delta_{j,L}), and for each
        L in the chain C_j <= (usage of draws <= L at t_j) + (1+eps) x (rentals ending after
        L, before j, each times delta_{j,L'} of its last L'). Stated for the free column
        Z_j = C_j - (1+eps) x (every rental ending before j, times delta): the part shared by
        all of j's rows moves to its capacity row (C_j >= 0 is implied: every cap is >= 0,
        and a larger C_j only loosens the capacity row)."""
        here = self.c0 + j
        if not len(self.chain[j]):
            self._row([(here, 1.0)], 0.0)  # C_j = Z_j, bounded below by 0: C_j = 0
            return
        start = int(self.chain_start[j])
        self._row([(here, 1.0), *self._ended(j, start - 1)], 0.0)
        for last in self.chain[j]:
            weighted, const = self._weighted(j, int(last), 1.0)
            self._row([(here, 1.0), *self._ended(j, int(last)), *weighted], const)

    def _matrix(self, width: int) -> Any:
        shape = (len(self.upper), width)
        return coo_matrix((self.vals, (self.rows, self.cols)), shape=shape).tocsr()

    def _eq_matrix(self, width: int) -> Any:
        shape = (self.n_eq, width)
        return coo_matrix((self.eq_vals, (self.eq_rows, self.eq_cols)), shape=shape).tocsr()

    def _bounds(self) -> tuple[Any, Any]:
        lb, ub = np.zeros(self.nvar), np.full(self.nvar, np.inf)
        ub[: self.nb] = 0.0 if self.reserve else self.need
        for j in range(self.n):
            if len(self.chain[j]):
                lb[self.c0 + j] = -np.inf  # Z_j (see _credit_rows)
        return lb, ub

    def solve_lp(self) -> tuple[float | None, Plan, list[float]]:
        lb, ub = self._bounds()
        res = linprog(self.cost, A_ub=self._matrix(self.nvar), b_ub=np.asarray(self.upper),
                      A_eq=self._eq_matrix(self.nvar), b_eq=np.zeros(self.n_eq),
                      bounds=np.column_stack([lb, ub]), method=LP_METHOD)  # fmt: skip
        if res.status != 0:
            return None, [], []
        xs, nb, costs = res.x, self.nb, self.costs
        plan = [(float(self.t[k]), self.offers[i], costs[k][i][1], costs[k][i][0],
                 float(xs[nb + col]))
                for col, (k, i, _) in enumerate(self.x_cols) if xs[nb + col] > 1e-9]  # fmt: skip
        return float(res.fun) * TRX, plan, [float(v) for v in xs[:nb]]

    def solve_milp(self, time_limit: float | None) -> tuple[float | None, Plan, list[float]]:
        """Each rental column gets a binary "ordered" z with min <= x <= big * z."""
        nb, nx, nvar = self.nb, self.nx, self.nvar
        big = float(self.need.sum()) * 2 + 1
        total = nvar + nx
        link_rows, link_cols, link_vals = [], [], []
        for col, (_, index, _) in enumerate(self.x_cols):
            a, b = 2 * col, 2 * col + 1
            link_rows += [a, a, b, b]
            link_cols += [nb + col, nvar + col, nb + col, nvar + col]
            link_vals += [1.0, -self.offers[index].min_amount / UNIT, 1.0, -big]
        links = coo_matrix((link_vals, (link_rows, link_cols)), shape=(2 * nx, total)).tocsr()
        lb, ub = self._bounds()
        res = milp(
            np.concatenate([self.cost, np.zeros(nx)]),
            constraints=[
                LinearConstraint(self._matrix(total), -np.inf, np.asarray(self.upper)),
                LinearConstraint(self._eq_matrix(total), 0.0, 0.0),
                LinearConstraint(links, np.tile([0.0, -np.inf], nx), np.tile([np.inf, 0.0], nx)),
            ],
            integrality=np.concatenate([np.zeros(nvar), np.ones(nx)]),
            bounds=Bounds(np.concatenate([lb, np.zeros(nx)]), np.concatenate([ub, np.ones(nx)])),
            options={"time_limit": time_limit, "disp": False},
        )
        if res.status != 0 or res.x is None:
            return None, [], []
        return float(res.fun) * TRX, [], []


def optimum(
    transfers: Iterable[TransferLike],
    book: PriceBook | Sequence[Offer],
    *,
    energy_fee: int,
    eps: float = 0.0,
    milp_time_limit: float | None = 1.0,
    milp_budget: float = 5.0,
    since: float | None = None,
    windows: Mapping[str, float | Sequence[float]] | None = None,
    reserve: int = 0,
) -> Optimum:
    """The hindsight optimum of a run, per address (see the module docstring).

    `milp_budget` (seconds) caps the time all addresses' MILPs may take together; addresses
    past it get `milp_sun=None`. `windows`: each address's recovery windows (seconds), one
    per transfer in time order (a stable sort of `transfers`' order) as its run certifies
    them (`sandbox/recovery.py`), or one for all its rows; 24 h for an address not in it.
    `reserve` > 0: the reference without foresight instead (see the module docstring).
    """
    started = time.perf_counter()
    per: dict[str, list[TransferLike]] = {}
    for record in transfers:
        per.setdefault(record.sender, []).append(record)
    result: dict[str, AddressOptimum] = {}
    for address in sorted(per):
        items = sorted(per[address], key=lambda r: r.at)
        left = milp_budget - (time.perf_counter() - started)
        limit = None if milp_time_limit is None or left <= 0 else min(milp_time_limit, left)
        solved = solve_address(
            address, [r.at for r in items], [r.energy_total for r in items], book,
            energy_fee=energy_fee, eps=eps, milp_time_limit=limit, since=since,
            window=(windows or {}).get(address, WINDOW), reserve=reserve,
        )  # fmt: skip
        result[address] = solved
    return Optimum(energy_fee, result, time.perf_counter() - started)


def stake_eps(energy_per_trx: float) -> float:
    """`eps` of the module docstring: the extra a whole-TRX delegation may give, per unit."""
    return energy_per_trx / 10_000


def summary(opt: Optimum) -> Mapping[str, Any]:
    return {
        "lower_bound_sun": opt.lower_bound_sun,
        "milp_sun": opt.milp_sun,
        "recovery_factor": round(opt.recovery_factor, 6),
        "recovery_short_rows": round(opt.short_rows, 6),
        "recovery_median": round(opt.median_factor, 6),
        "seconds": round(opt.seconds, 3),
    }


__all__ = ["AddressOptimum", "Optimum", "Rental", "optimum", "rental_types", "solve_address"]
