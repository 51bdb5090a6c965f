"""A simulated payment processor: USDT-like transfers that spend the watched addresses' energy.

A `Workload` is a sorted list of `Transfer`s (seconds from the start, sender, whether the
recipient is fresh: a fresh recipient costs ~130k energy instead of ~65k). It comes from:

- a built-in profile, `profile(name, senders, days=..., seed=...)`, deterministic by seed:
  `steady` (the same rate all day), `daily` (busy afternoons, quiet nights), `bursty`
  (a quiet trickle and bursts of payouts), `payments` (daily cycle plus bursts: the
  sandbox's default), `week` (the daily cycle at 1.25 transfers per sender per hour: 50
  senders make about 10,000 transfers a week) and `deposits` (each sender is a deposit
  address: it receives one deposit at a random time and sweeps it 1-10 minutes later to a
  hot wallet holding USDT, one transfer per address);
- a CSV a user exports from their own history, `read_csv(path)`: columns `time` (ISO 8601
  or Unix seconds), `sender` (base58 address) and `recipient_holds_usdt` (true/false,
  yes/no, 1/0); times keep their time of day: the simulation starts at midnight UTC of
  the first row's day.

`Spender` plays a workload on a `ChainState`: each due transfer goes through
`ChainState.transfer_usdt` (which burns TRX for the energy the sender lacks), and its
receipt becomes a `TransferRecord` (energy from the pool, TRX burned, and the usage the
node held for the sender just before: the optimum's recovery certificate reads it). Senders are
refilled with TRX when low, as a processor refills its hot wallets, so a transfer never
fails for want of TRX. Neighbours: `sandbox/world.py` (the chain), `sandbox/simulating.py`
and `sandbox/running.py` (who call `Spender.run_until`).
"""

from __future__ import annotations

import csv
import hashlib
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sandbox import demo
from sandbox.tron_node import ChainState
from sandbox.tron_node.accounts import to_base58, to_hex

PROFILES = ("steady", "daily", "bursty", "payments", "week", "deposits")
DAY = 86_400.0
TRX = 1_000_000
_TRUE = {"1", "true", "yes", "y", "holder"}
_FALSE = {"0", "false", "no", "n", "fresh"}


class WorkloadError(ValueError):
    """A workload that cannot be read: unknown profile, bad CSV row (with its line)."""


@dataclass(frozen=True, slots=True)
class Transfer:
    at: float  # seconds from the workload's start
    sender: str
    fresh: bool  # the recipient holds no USDT yet (costs more energy)


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    transfers: tuple[Transfer, ...]

    @property
    def senders(self) -> list[str]:
        return sorted({t.sender for t in self.transfers})

    @property
    def span(self) -> float:
        return self.transfers[-1].at if self.transfers else 0.0


@dataclass(frozen=True, slots=True)
class TransferRecord:
    at: float  # epoch seconds
    sender: str
    fresh: bool
    txid: str
    ok: bool
    energy_used: int  # from the sender's pool
    energy_total: int  # what the transfer needed
    burned_sun: int  # TRX burned for the energy the pool lacked
    usage_before: int = 0  # the sender's energy usage on the node just before (decayed)


def _rate(name: str, t: float) -> float:
    """Relative intensity of profile `name` at `t` seconds (mean about 1 over a day)."""
    if name == "steady":
        return 1.0
    hour = (t % DAY) / 3600.0
    cycle = max(0.05, 1.0 + 0.95 * math.sin(2 * math.pi * (hour - 9.0) / 24.0))
    if name in ("daily", "week"):
        return cycle
    return 0.4 * (cycle if name == "payments" else 1.0)  # bursty/payments: bursts added


def profile(
    name: str,
    senders: Sequence[str],
    *,
    days: float,
    seed: int = 0,
    per_hour: float = 1.0,
    fresh_share: float = 0.15,
) -> Workload:
    """A built-in profile: about `per_hour` transfers per sender per hour on average."""
    if name not in PROFILES:
        raise WorkloadError(f"unknown profile {name!r}: one of {', '.join(PROFILES)}")
    rng = random.Random(f"{name}/{seed}")
    span = days * DAY
    out: list[Transfer] = []
    if name == "week":
        per_hour *= 1.25
    for sender in senders:
        if name == "deposits":  # one deposit, one sweep (to the hot wallet: a holder)
            out.append(Transfer(rng.uniform(0, max(0.0, span - 600.0)) + rng.uniform(60, 600),
                                sender, False))  # fmt: skip
            continue
        weight = rng.uniform(0.5, 1.5) * per_hour / 3600.0
        peak = weight * 2.0
        t = 0.0
        while True:  # thinning: a Poisson process at `peak`, kept with probability rate/peak
            t += rng.expovariate(peak)
            if t >= span:
                break
            if rng.random() * 2.0 < _rate(name, t):
                out.append(Transfer(t, sender, rng.random() < fresh_share))
        if name in ("bursty", "payments"):  # a burst every ~6 h: 3-8 payouts in 10 minutes
            at = rng.expovariate(1 / (6 * 3600.0))
            while at < span:
                for _ in range(rng.randint(3, 8)):
                    when = at + rng.uniform(0, 600.0)
                    if when < span:
                        out.append(Transfer(when, sender, rng.random() < fresh_share))
                at += rng.expovariate(1 / (6 * 3600.0))
    out.sort(key=lambda tr: (tr.at, tr.sender))
    return Workload(name, tuple(out))


def _time(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone (add Z or +00:00)")
    return when.timestamp()


def parse_csv(lines: Iterable[str], *, name: str = "csv") -> Workload:
    """Transfers from CSV text; see the module docstring for the columns."""
    reader = csv.DictReader(lines)
    need = {"time", "sender", "recipient_holds_usdt"}
    if reader.fieldnames is None or not need <= set(reader.fieldnames):
        raise WorkloadError(f"{name}: the header must name {', '.join(sorted(need))}")
    rows: list[tuple[float, str, bool]] = []
    for row in reader:
        line = reader.line_num
        try:
            holds = row["recipient_holds_usdt"].strip().lower()
            if holds not in _TRUE | _FALSE:
                raise ValueError(f"recipient_holds_usdt {holds!r} is not true or false")
            sender = row["sender"].strip()
            if not (sender.startswith("T") and len(sender) == 34):
                raise ValueError(f"sender {sender!r} is not a base58 TRON address")
            rows.append((_time(row["time"]), sender, holds in _FALSE))
        except (ValueError, AttributeError) as exc:
            raise WorkloadError(f"{name}:{line}: {exc}") from None
    if not rows:
        raise WorkloadError(f"{name}: no transfers")
    rows.sort()
    first = rows[0][0] // DAY * DAY  # midnight UTC of the first row's day
    return Workload(name, tuple(Transfer(t - first, s, f) for t, s, f in rows))


#: the day exported workloads start on (a UTC midnight: times keep their time of day)
EXPORT_EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def write_csv(workload: Workload, path: str | Path, *, start: float = EXPORT_EPOCH) -> int:
    """Write `workload` as a CSV `read_csv` reads back (times from `start`); returns the
    number of transfers written."""
    with Path(path).open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["time", "sender", "recipient_holds_usdt"])
        for item in workload.transfers:
            when = datetime.fromtimestamp(start + item.at, tz=UTC).isoformat()
            out.writerow([when.replace("+00:00", "Z"), item.sender, str(not item.fresh).lower()])
    return len(workload.transfers)


def read_csv(path: str | Path) -> Workload:
    with Path(path).open(newline="") as handle:
        return parse_csv(handle, name=str(path))


def load_workload(spec: str, senders: Sequence[str], *, days: float, seed: int = 0) -> Workload:
    """A profile name or a CSV file; a CSV is cut to `days`."""
    if spec in PROFILES:
        return profile(spec, senders, days=days, seed=seed)
    if not Path(spec).is_file():
        raise WorkloadError(f"{spec!r} is neither a profile ({', '.join(PROFILES)}) nor a file")
    loaded = read_csv(spec)
    span = days * DAY
    return Workload(loaded.name, tuple(t for t in loaded.transfers if t.at < span))


def fresh_address(seed: int, n: int) -> str:
    """The n-th fresh recipient: an address no one has used (derived, never activated)."""
    digest = hashlib.sha256(f"energyctl-sandbox/fresh/{seed}/{n}".encode()).digest()
    return to_base58("41" + digest[:20].hex())


class Spender:
    """Plays a workload on a chain, from `start` (epoch seconds); see the module docstring."""

    def __init__(
        self,
        chain: ChainState,
        workload: Workload,
        *,
        start: float,
        seed: int = 0,
        refill_below_trx: int = 100,
        refill_trx: int = 1_000,
    ) -> None:
        self.chain, self.workload, self.start, self.seed = chain, workload, start, seed
        self.refill_below, self.refill = refill_below_trx * TRX, refill_trx * TRX
        self.records: list[TransferRecord] = []
        self.refilled_sun = 0
        self._next = 0
        self._fresh = 0

    @property
    def done(self) -> bool:
        return self._next >= len(self.workload.transfers)

    def next_at(self) -> float | None:
        """Epoch time of the next transfer, None when all were made."""
        if self.done:
            return None
        return self.start + self.workload.transfers[self._next].at

    def run_until(
        self, now: float, *, set_time: Callable[[float], None] | None = None
    ) -> list[TransferRecord]:
        """Make every transfer due by `now`; `set_time(at)` moves a virtual clock first."""
        made: list[TransferRecord] = []
        transfers = self.workload.transfers
        while self._next < len(transfers) and self.start + transfers[self._next].at <= now:
            item = transfers[self._next]
            self._next += 1
            if set_time is not None:
                set_time(self.start + item.at)
            made.append(self._transfer(item))
        self.records += made
        return made

    def _transfer(self, item: Transfer) -> TransferRecord:
        chain = self.chain
        if not chain.has_account(item.sender):
            chain.create_account(item.sender, 0)
        if chain.balance(item.sender) < self.refill_below:
            chain.fund(item.sender, self.refill)
            self.refilled_sun += self.refill
        if item.fresh:
            self._fresh += 1
            recipient = fresh_address(self.seed, self._fresh)
        else:
            recipient = demo.SINK
        resource = chain.account_resource_json(to_hex(item.sender)) or {}
        txid = chain.transfer_usdt(item.sender, recipient)
        receipt = chain.receipt_summary(txid)
        return TransferRecord(
            at=chain.clock.now(),
            sender=item.sender,
            fresh=item.fresh,
            txid=txid,
            ok=receipt.get("result") == "SUCCESS",
            energy_used=int(receipt.get("energy_usage", 0)),
            energy_total=int(receipt.get("energy_usage_total", 0)),
            burned_sun=int(receipt.get("energy_fee", 0)),
            usage_before=int(resource.get("EnergyUsed", 0)),
        )


__all__ = [
    "PROFILES",
    "Spender",
    "Transfer",
    "TransferRecord",
    "Workload",
    "WorkloadError",
    "fresh_address",
    "load_workload",
    "parse_csv",
    "profile",
    "read_csv",
    "write_csv",
]
