"""HOW energy is bought: one adapter per vendor behind one async interface.

`base.py` is the interface (`Provider`, its values, errors and `Capabilities`); each adapter
declares its vendor type, its settings model (what a Provider document's `spec` holds for
it, registered with `policies.vendors`), its capabilities and its callback verification
(if any). `registry.py` maps type names to adapters: the built-in four (`mefree.py`,
`itrx.py`, `eopen.py`, `tronsave.py`, on `adapter.py`'s shared HTTP plumbing) and plug-ins
of the `energyctl.providers` entry-point group. `wire.py` parses answers strictly.

Depends on `policies` only (units, secrets, settings models). `providers/http.py` is the one
place that knows httpx and tenacity.
"""
