"""Fixtures for the vendor emulator tests: a virtual clock, a recording delegator."""

from __future__ import annotations

import pytest

from engine.core.clock import VirtualClock
from sandbox.providers.base import RecordingDelegator

RECEIVER = "TExWKszFWYTKZH8LYiovAPKzS3L9MLZ4kw"
OTHER = "TTEdJLKjC9chpDGB9Kao1XGUqSK71DVMDG"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def delegator() -> RecordingDelegator:
    return RecordingDelegator(capacity=50_000_000)
