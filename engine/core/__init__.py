"""The engine's ground floor: pieces every room shares and that know no room.

The order vocabulary (records, phases), time (the Clock), bounded concurrency, crash points
and the engine's error root. May use `policies`, `providers` and the standard library only;
imports nothing else from `engine`.
"""
