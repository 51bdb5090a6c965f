"""The offline world: an emulated TRON node and emulated providers on loopback.

Emulators are written from the vendors' and TRON's public documents (each module cites
its sources) and never import an adapter's request builders or parsers (an emulator that
reuses adapter code would only mirror its bugs). May import any lower layer for plumbing
(clock, units).

Sub-packages: `tron_node` (the emulated full node), `providers` (one emulator per vendor
and `VENDORS`, the list of them), `chaos` (fault scenarios against the engine). Modules:
`world` (node and emulators on one clock), `demo` (fixed accounts and policy files),
`serving`/`running`/`live` (serving on loopback, `energyctl sandbox`), `workload`,
`simulating` and `reporting` (`energyctl simulate`).
"""
