"""Two `energyctl run` processes on one SQLite store never buy twice for one need.

Issue 13, finding 2: with two sidecars on one store, the one refused by the store's
one-open-order rule kept its reading of the address from before the other's order, and a
later pass (an ensure for another address) bought the address again once that order had
ended. A few rounds of the aimed race here; `bench/two_sidecars.py` runs 50.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sandbox import demo
from tests.e2e.test_run_sidecar import _box
from tests.e2e.two_sidecars import Pair

pytestmark = pytest.mark.slow

TRIALS = 5


@pytest.mark.timeout(120)
def test_the_refused_process_never_buys_on_its_old_reading(tmp_path: Path) -> None:
    for box in _box(tmp_path, watched=demo.WATCHED + TRIALS + 1):
        extra = box.world.watched[demo.WATCHED :]
        pair = Pair(box, extra).start()
        counts: list[int] = []
        try:
            y = extra[-1]
            for x in extra[:TRIALS]:
                counts.append(pair.trial(x, y))
        finally:
            codes = pair.stop()
        doubles = sum(1 for n in counts if n > 1)
        print(f"\ntwo sidecars: trials={len(counts)} doubles={doubles}", file=sys.__stderr__)
        assert codes == [0, 0], pair.logs()
        assert counts == [1] * TRIALS, pair.logs()
