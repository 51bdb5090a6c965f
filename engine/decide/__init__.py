"""Decide: from snapshots, open orders and quotes to a plan. Pure.

`plans.py` holds the plan's types, `planning.py` the functions that assess addresses and
rank candidates. May use `engine.core`, `policies` and `providers.base`; does no I/O and
imports neither httpx, tronpy, psycopg, sqlite3 nor the store (an import-linter contract).
"""
