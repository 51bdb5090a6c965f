"""A provider that never answers: how long the other addresses wait for their top-ups.

One engine pass (`sandbox.chaos.hanging.hang_pass`) over eight drained addresses, two of
them with itrx first, while itrx holds every answer to the chosen operations for an hour.
With the engine's `call_timeout` (15 s, emulated), prints per address its first vendor,
where its order went, the phase the pass left it in, and the emulated seconds to its
intent and to the vendor's acceptance; then the pass's emulated and wall time. Cases:
itrx hangs on create only; on quotes, balance and create. Ends with one line:

    RESULT timeout_s=15 create_pass_s=.. others_max_s=.. reads_pass_s=.. fallback_max_s=..

    .venv/bin/python bench/hang.py
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from sandbox.chaos.hanging import HangResult, hang_pass


def show(result: HangResult, wall: float) -> None:
    print(f"itrx hangs on {', '.join(result.ops)} (timeout {result.timeout:g} s)")
    for item in result.addresses:
        intent = "-" if item.intent_s is None else f"{item.intent_s:.0f}"
        accepted = "-" if item.accepted_s is None else f"{item.accepted_s:.0f}"
        print(
            f"  {item.address}  first {item.first:<8} -> {item.provider or '-':<8} "
            f"{item.phase or '-':<9} intent +{intent:>3} s  accepted +{accepted:>3} s"
        )
    print(f"  pass: {result.pass_s:.0f} s emulated, {wall:.2f} s wall")


async def case(ops: tuple[str, ...]) -> HangResult:
    with tempfile.TemporaryDirectory(prefix="energyctl-hang-") as directory:
        start = time.perf_counter()
        result = await hang_pass(Path(directory), ops=ops)
        show(result, time.perf_counter() - start)
    return result


async def main() -> None:
    create = await case(("create",))
    reads = await case(("price", "balance", "create"))
    others = [a.accepted_s or 0.0 for a in create.addresses if a.first != "itrx"]
    fallback = [a.accepted_s or 0.0 for a in reads.addresses if a.first == "itrx"]
    print(
        f"RESULT timeout_s={create.timeout} create_pass_s={create.pass_s:.0f} "
        f"others_max_s={max(others):.0f} reads_pass_s={reads.pass_s:.0f} "
        f"fallback_max_s={max(fallback):.0f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
