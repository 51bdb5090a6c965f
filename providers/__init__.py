"""HOW energy is bought: one adapter per vendor behind one async interface.

Depends on `policies` only (for units). `providers/http.py` is the one place that knows
httpx and tenacity.
"""
