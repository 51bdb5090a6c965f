"""Every test sees the built-in vendors registered with the policy layer.

`policies` knows no vendor by itself (`policies/vendors.py`); the adapters' settings
models are registered by importing `providers.registry`, as the engine and the CLI do.
"""

from providers import registry

registry.load()
