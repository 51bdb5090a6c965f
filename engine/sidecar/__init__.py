"""The sidecar: the long-running controller and what serves and watches it.

The controller and its parts (ensure desk, shard leases, policy swaps, rounds, reloading),
the HTTP service and its OpenAPI document, metrics, alerts, logs, admitting pushed sets,
and the client that pushes to it. May use `engine.session`, `engine.reconciling` and every
room below them; not `engine.cli`.
"""
