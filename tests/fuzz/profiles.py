"""Hypothesis profiles for the fuzzing suites: bounded in CI, longer on demand.

`ci` (the default) is derandomized, so a run is reproducible and a failure found in CI is
found again locally; `dev` runs twenty times the examples with fresh randomness and the
example database. Select with `ENERGYCTL_FUZZ_PROFILE=dev`; scale further with
`ENERGYCTL_FUZZ_EXAMPLES=<factor>`.

The profiles are applied per test through `fuzz(examples)`, not loaded globally, so the
other property tests of the suite keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=_SLOW,
)
settings.register_profile(
    "dev",
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=_SLOW,
)

PROFILE = os.environ.get("ENERGYCTL_FUZZ_PROFILE", "ci")
_FACTOR = {"ci": 1, "dev": 20}.get(PROFILE, 1)
FACTOR = int(os.environ.get("ENERGYCTL_FUZZ_EXAMPLES", _FACTOR))


def fuzz(examples: int) -> settings:
    """Settings for one fuzz test: the active profile with `examples` x FACTOR examples."""
    return settings(settings.get_profile(PROFILE), max_examples=max(1, examples * FACTOR))
