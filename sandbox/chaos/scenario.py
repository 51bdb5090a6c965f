"""Seeded chaos scenarios: which faults hit which step of a run, and the workload's needs.

`Scenario.random(seed)` draws, reproducibly, for each step of the fault window zero or
more `Fault`s from `KINDS`, and for each watched address the step its energy is drained
(one need per address per run: for a fixed amount any second delivered order is a double
order; a rolling level may fill up piece by piece after its drain, one order in flight at
a time, see `checking.py`).
Every fault is cleared at the end of the window (`fault_end`); kills stay armed until
they fire (a point that is never reached again in the run is disarmed then too).

Fault kinds (`Fault.kind`, with `target` and `arg`):

| kind | target | effect |
| --- | --- | --- |
| kill | a crash point | the engine dies there (in-process, `injecting.Killed`) |
| fail | vendor | next call of `arg` answered 5xx, after the vendor acted (ambiguous) |
| fail_before | vendor | next call of `arg` answered 5xx before anything happened |
| hang | vendor | next call of `arg` never answered (held an hour) |
| slow | vendor | orders accepted from now on delivered `arg` seconds late |
| undelivered | vendor | orders accepted from now on never delegated |
| partial | vendor | orders accepted from now on get half their energy |
| rate_limit | vendor | the vendor allows `arg` requests a second |
| broke | vendor | the vendor's balance drops to 0 |
| node_down | node | every node request answered 503 for `arg` steps |
| node_stale | node | the node serves frozen answers for `arg` steps |
| node_junk | node | the node answers account reads HTTP 200 with junk for `arg` steps |
| price_move | vendor | orders from now on charged `arg` (a share) more than quoted, to the caps |
| store_down | store | every store call fails for `arg` steps |
| store_flaky | store | 30 % of store calls fail for `arg` steps |
| wake_twice | - | duplicated/reordered callbacks: two passes at once this step |

Neighbours: `running.py` (plays a scenario), `injecting.py`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.core.crashing import CRASH_POINTS
from sandbox.providers import VENDORS as EMULATED

VENDORS = tuple(v.name for v in EMULATED)
KILL_POINTS = (*CRASH_POINTS, "before_move", "after_move")
VENDOR_OPS = ("create", "price", "balance", "status")
KINDS = (
    "kill", "fail", "fail_before", "hang", "slow", "undelivered", "partial", "rate_limit",
    "broke", "node_down", "node_stale", "store_down", "store_flaky", "wake_twice",
    "node_junk", "price_move",
)  # fmt: skip


@dataclass(frozen=True)
class Fault:
    step: int
    kind: str
    target: str = ""
    arg: str = ""

    def __str__(self) -> str:
        return f"{self.kind}({self.target}{',' if self.arg else ''}{self.arg})@{self.step}"


@dataclass
class Scenario:
    seed: int
    faults: list[Fault] = field(default_factory=list)
    #: address index -> the step its energy is drained (its need starts)
    needs: dict[int, int] = field(default_factory=dict)
    fault_steps: int = 12
    max_steps: int = 60

    def at(self, step: int) -> list[Fault]:
        return [f for f in self.faults if f.step == step]

    @classmethod
    def random(cls, seed: int, addresses: int, *, fault_steps: int = 12) -> Scenario:
        rng = random.Random(seed)
        scenario = cls(seed, fault_steps=fault_steps)
        for index in range(addresses):
            scenario.needs[index] = rng.randrange(0, fault_steps)
        for step in range(fault_steps):
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                scenario.faults.append(_draw(rng, step, fault_steps))
        return scenario

    @classmethod
    def fixed(
        cls, seed: int, faults: Sequence[Fault], needs: dict[int, int], *, fault_steps: int = 12
    ) -> Scenario:
        return cls(seed, list(faults), dict(needs), fault_steps=fault_steps)


def _draw(rng: random.Random, step: int, fault_steps: int) -> Fault:
    kind = rng.choice(KINDS)
    vendor = rng.choice(VENDORS)
    span = str(rng.randint(1, max(1, fault_steps - step)))
    if kind == "kill":
        return Fault(step, kind, rng.choice(KILL_POINTS))
    if kind in ("fail", "fail_before", "hang"):
        return Fault(step, kind, vendor, rng.choice(VENDOR_OPS))
    if kind == "slow":
        return Fault(step, kind, vendor, str(rng.choice((60, 240, 600))))
    if kind == "rate_limit":
        return Fault(step, kind, vendor, str(rng.choice((0, 1))))
    if kind in ("node_down", "node_stale", "node_junk", "store_down", "store_flaky"):
        return Fault(step, kind, kind.split("_")[0], span)
    if kind == "price_move":
        return Fault(step, kind, vendor, rng.choice(("0.1", "0.3", "0.6", "1.0")))
    if kind == "wake_twice":
        return Fault(step, kind)
    return Fault(step, kind, vendor)


__all__ = ["KILL_POINTS", "KINDS", "VENDORS", "Fault", "Scenario"]
