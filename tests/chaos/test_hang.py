"""A provider that never answers delays the others by at most its timeout (emulated time).

itrx holds every answer for an hour; the engine's `call_timeout` (15 s on its clock)
bounds each call. Asserted on emulated seconds and on where orders went, never on wall
time (`bench/hang.py` prints the figures).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.chaos import running
from sandbox.chaos.hanging import hang_pass

#: emulated seconds a vendor's own rate limit may pace a pass's calls (Netts: 2 a second;
#: a pass reads its quotes and balance, then creates): never a wait for the hung vendor
PACING = 1.0


async def test_a_hanging_create_holds_only_its_own_addresses(tmp_path: Path) -> None:
    result = await hang_pass(tmp_path, ops=("create",))
    assert result.timeout is not None
    assert result.pass_s <= result.timeout + PACING
    for item in result.addresses:
        if item.first == "itrx":  # ambiguous after the timeout: held, never bought elsewhere
            assert item.provider == "itrx" and item.phase == "unknown", item
        else:  # bought in the same pass, without waiting for itrx
            assert item.provider not in (None, "itrx") and item.phase == "submitted", item
            assert item.accepted_s is not None and item.accepted_s <= PACING, item


async def test_hanging_quotes_and_balance_reads_do_not_stall_the_pass(tmp_path: Path) -> None:
    result = await hang_pass(tmp_path, ops=("price", "balance", "create"))
    assert result.timeout is not None
    assert result.pass_s <= result.timeout + PACING
    for item in result.addresses:
        # itrx's quote timed out: its addresses fall back to their next vendor
        assert item.provider is not None and item.provider != "itrx", item
        assert item.phase == "submitted", item
        assert item.accepted_s is not None and item.accepted_s <= result.timeout + PACING, item


async def test_without_a_call_timeout_the_pass_would_wait_for_the_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound is what the timeout buys: with it switched off, the pass waits the
    hour the vendor holds its answer (emulated)."""
    monkeypatch.setattr(running, "CALL_TIMEOUT", None)
    result = await hang_pass(tmp_path, ops=("create",))
    assert result.pass_s >= 3600.0
