"""The chaos harness: the engine against an in-process World under seeded fault injection.

`scenario.py` draws the faults of a run from a seed, `injecting.py` holds what is
injected into the engine itself (in-process kills, an unavailable store, emulated time),
`running.py` plays one run and `checking.py` checks the money invariants afterwards.
`bench/chaos.py` runs many seeds; `tests/chaos/` a few. See docs/chaos.md.
"""
