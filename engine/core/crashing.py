"""Crash points: where a test may kill the engine, to prove that no money is lost there.

`ENERGYCTL_TEST_CRASH_AT=<point>` makes the process exit at once (status 137) when it
reaches that point: the crash tests' hook, inert unless the variable is set. The chaos
suite (`sandbox/chaos/`) sets `crash_hook` instead, called with the name of every crash
point, to kill an in-process engine there; None (the default) makes it inert. Applying
passes `CRASH_POINTS`; tracking passes `before_move` and `after_move`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

CRASH_ENV = "ENERGYCTL_TEST_CRASH_AT"
#: where applying may be killed: before the intent's commit, after it (before the call),
#: after the provider's receipt (before its store write), after a failed or ambiguous
#: answer (before its store write)
CRASH_POINTS = ("before_intent", "after_intent", "after_place", "after_answer")
#: test-only: called with each crash point's name (`sandbox/chaos/`); None: inert
crash_hook: Callable[[str], None] | None = None


def crash_point(name: str) -> None:
    """Exit the process at once if the crash tests asked for a crash at `name` (or let
    the chaos suite's `crash_hook` raise there)."""
    if crash_hook is not None:
        crash_hook(name)
    if os.environ.get(CRASH_ENV) == name:
        os._exit(137)
