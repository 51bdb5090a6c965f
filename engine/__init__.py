"""HOW the system converges: observe the chain, plan, apply through providers, remember.

Depends on `policies` and `providers`. Only `chain.py` and `store/` do I/O of their own.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("energyctl")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
