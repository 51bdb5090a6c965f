"""Two `energyctl run` processes on one SQLite store: the aimed race of issue 13, finding 2.

Serves the sandbox World on loopback (real-time clock, vendor emulators), starts two
sidecars on one policy directory and store (`tests/e2e/two_sidecars.py`), and runs the
race `--trials` times, each on a fresh address: drain it, ensure it on both at once, pause
the process the store refused until the order has ended, then ensure another address on
both. A trial whose address got more than one order is a double.

    .venv/bin/python bench/two_sidecars.py [--trials 50]

Last line: `RESULT trials=.. doubles=.. refusals=..` (refusals: trials where the second
process was refused by the store's one-open-order rule, the ones that aim the race).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the e2e harness:
from sandbox import demo
from tests.e2e.test_run_sidecar import _box
from tests.e2e.two_sidecars import Pair


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    started = time.monotonic()
    counts: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        for box in _box(Path(tmp), watched=demo.WATCHED + args.trials + 1):
            extra = box.world.watched[demo.WATCHED :]
            pair = Pair(box, extra).start()
            try:
                for n, x in enumerate(extra[: args.trials]):
                    counts.append(pair.trial(x, extra[-1]))
                    if counts[-1] > 1:
                        print(f"trial {n + 1}: {x} bought {counts[-1]} times", flush=True)
            finally:
                codes = pair.stop()
            refusals = pair.refusals
    doubles = sum(1 for c in counts if c > 1)
    print(f"exit codes {codes}; {time.monotonic() - started:.0f}s", flush=True)
    print(f"RESULT trials={len(counts)} doubles={doubles} refusals={refusals}", flush=True)
    return 0 if doubles == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
