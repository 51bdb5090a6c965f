"""Two `energyctl run` processes on one SQLite store: the aimed race of issue 13, finding 2.

`Pair(box, addresses)` adds a policy `race` over `addresses` (extra watched addresses of
the World; budgets far above what the trials spend) and starts two sidecars on the same
policy directory, hence the same SQLite file, with a 60 s observation interval: between
sweeps a pass re-reads only what it was asked for and what it knows to be busy.

`trial(x, y)` is one round of the race: drain `x`, ask both processes at once to ensure
it (one buys; the other holds, or is refused by the store's one-open-order rule), wait
until the order has ended in the store (delivered), then ask both to ensure `y` (which
has its energy: the pass it starts buys nothing for it). A process that planned `x` again
on its reading from before the order would buy `x` twice; `trial` returns how many orders
`x` got (1 is right). The refused process is paused (SIGSTOP) until the order has ended,
as a slow or starved process would be: otherwise its own tracking often moves the order
first, which marks `x` for a fresh read, and the race is missed (3 rounds in 12 hit it
without the pause). Used by `tests/e2e/test_two_sidecars.py` and `bench/two_sidecars.py`.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine.store import OPEN_PHASES, OrderPhase
from tests.e2e.sandboxed import Sandbox
from tests.e2e.test_run_sidecar import AUTH, Sidecar

THRESHOLD = 65_000


class Pair:
    def __init__(self, box: Sandbox, addresses: list[str]) -> None:
        self.box = box
        (box.directory / "race.yaml").write_text(
            "apiVersion: energyctl/v1\nkind: EnergyPolicy\nmetadata: {name: race}\nspec:\n"
            f"  addresses: [{', '.join(addresses)}]\n  threshold: 65k\n"
            "  topUp: {amount: 131k, duration: 1h}\n  providers: [itrx, mefree, tronsave]\n"
            "  maxPrice: 120 sun/energy\n  budget: {perDay: 100000 TRX}\n"
        )
        self.cars = [Sidecar(box, interval="60s"), Sidecar(box, interval="60s")]
        self.refusals = 0  # trials where one process was refused by the store

    def start(self) -> Pair:
        for car in self.cars:
            car.start()
        return self

    def stop(self) -> list[int]:
        codes = []
        for car in self.cars:
            try:
                codes.append(car.terminate())
            except Exception:
                car.kill()
                codes.append(-1)
        return codes

    def logs(self) -> str:
        return "\n".join(car.logs()[-3000:] for car in self.cars)

    def _both(self, body: dict[str, Any]) -> list[Any]:
        with ThreadPoolExecutor(len(self.cars)) as pool:
            answers = list(pool.map(lambda car: car.post("/v1/ensure", body, AUTH), self.cars))
        for answer in answers:
            assert answer.status_code == 200, answer.text
        return [a.json() for a in answers]

    def orders_of(self, address: str) -> list[Any]:
        return [o for o in self.box.orders() if o.address == address]

    def trial(self, x: str, y: str, timeout: float = 30.0) -> int:
        self.box.world.drain([x])
        assert self.box.world.available_energy(x) < THRESHOLD
        answers = self._both({"address": x, "energy": THRESHOLD})
        refused = [car for car, a in zip(self.cars, answers, strict=True) if _refused(a)]
        paused = [car.proc.pid for car in refused if car.proc is not None]
        for pid in paused:
            os.kill(pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + timeout
            while True:
                mine = self.orders_of(x)
                if mine and not any(o.phase in OPEN_PHASES for o in mine):
                    break
                assert time.monotonic() < deadline, f"{x}: its order never ended: {mine}"
                time.sleep(0.1)
        finally:
            for pid in paused:
                os.kill(pid, signal.SIGCONT)
        self.refusals += len(paused)
        assert any(o.phase is OrderPhase.DELIVERED for o in mine), mine
        self._both({"address": y, "energy": 1})
        time.sleep(0.3)  # a pass either process started meanwhile has written its intent
        return len(self.orders_of(x))


def _refused(answer: dict[str, Any]) -> bool:
    order = answer.get("order") or {}
    return "open order(s) already exist" in str(order.get("reason", ""))
