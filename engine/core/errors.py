"""The root of the engine's errors.

Every error the engine raises on purpose (chain, store, providing, controller, push, a
call's timeout) is an `EngineError`, so a caller that reports engine failures (the CLI's
`run_or_exit`) catches this one class; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class EngineError(Exception):
    """A failure of the engine that its message explains; never a programming error."""
