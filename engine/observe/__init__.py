"""Observe: what the chain says now.

Chain reads (`chain.py`), block following (`following.py`) and snapshot caching
(`observing.py`). May use `engine.core`; knows nothing of plans, orders or the store.
"""
