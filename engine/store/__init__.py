"""Persistence of orders, the spend ledger, leases and applied policy revisions."""
