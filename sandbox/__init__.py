"""The offline world: an emulated TRON node and emulated providers on loopback.

Emulators are written from `shared/reference/` and never import an adapter's request
builders or parsers (an emulator that reuses adapter code would only mirror its bugs).
May import any lower layer for plumbing (clock, units).
"""
