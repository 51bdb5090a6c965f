"""HOW the system converges: observe the chain, decide, act through providers, remember.

Depends on `policies` and `providers`. Rooms, each importing only those below it:
`cli/` <- `sidecar/` <- `session.py` <- `reconciling.py` (the one pass) <- `act/` <-
`decide/` (pure) | `observe/` | `store/` <- `core/`. I/O of its own: `observe/` (the
node), `store/` (the database), `act/` and `session.py` (vendors, through `providers`),
`sidecar/` (HTTP service, alerts, pushes). See docs/architecture.md.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("energyctl")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
