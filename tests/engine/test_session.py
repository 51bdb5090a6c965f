"""Session wiring: the store settings' password reaches a PostgreSQL store, never SQLite.

`open_store` is replaced by a recorder (no database is opened); the policy set is the
sandbox's, with its store URL and a password reference set per case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import session as session_module
from engine.core.clock import VirtualClock
from engine.session import Session, store_password
from engine.sidecar.reloading import PolicySource
from sandbox import demo
from sandbox.world import World

PORTS = {"node": 1, **{vendor: 2 + n for n, vendor in enumerate(demo.VENDORS)}}


def _policy_set(tmp_path: Path, url: str, password: bool) -> Any:
    World(ports=PORTS).write_policies(tmp_path, store_url=url)
    if password:
        with (tmp_path / "engine.yaml").open("a") as f:
            f.write("    password: {fromEnv: UNIT_DB_PASSWORD}\n")
    env = {**demo.env_values(), "UNIT_DB_PASSWORD": "s3cret-db"}
    loaded = PolicySource([tmp_path], env=env).load()
    assert loaded.policy_set is not None, loaded.errors
    return loaded.policy_set


class _Opened(Exception):
    pass


@pytest.mark.parametrize(
    ("url", "password", "expected"),
    [
        ("postgresql://energyctl@db.test:5432/energy?schema=e", True, "s3cret-db"),
        ("postgresql://energyctl@db.test:5432/energy", False, None),
    ],
)
async def test_the_store_password_reaches_open_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, password: bool, expected: Any
) -> None:
    seen: list[Any] = []

    async def recorder(given: str, clock: Any, *, password: Any = None) -> Any:
        seen.append((given, None if password is None else password.get_secret_value()))
        raise _Opened

    monkeypatch.setattr(session_module, "open_store", recorder)
    policy_set = _policy_set(tmp_path, url, password)
    with pytest.raises(_Opened):
        async with Session(policy_set, clock=VirtualClock()):
            pass
    assert seen == [(url, expected)]


def test_an_sqlite_override_gets_no_password(tmp_path: Path) -> None:
    policy_set = _policy_set(tmp_path, "postgresql://energyctl@db.test/energy", True)
    assert store_password(policy_set, "sqlite:///x.db") is None
    secret = store_password(policy_set, "postgresql://energyctl@db.test/energy")
    assert secret is not None and "s3cret" not in repr(secret)


def test_provider_calls_are_bounded_in_real_time_only(tmp_path: Path) -> None:
    from engine.core.clock import ScaledClock, SystemClock
    from engine.session import DEFAULT_CALL_TIMEOUT

    policy_set = _policy_set(tmp_path, "sqlite:///x.db", password=False)
    assert Session(policy_set, clock=SystemClock()).call_timeout == DEFAULT_CALL_TIMEOUT
    assert Session(policy_set).call_timeout == DEFAULT_CALL_TIMEOUT
    # emulated seconds are not wall seconds: the caller chooses there
    assert Session(policy_set, clock=ScaledClock(speed=60)).call_timeout is None
    assert Session(policy_set, clock=VirtualClock()).call_timeout is None
    assert Session(policy_set, clock=ScaledClock(), call_timeout=5.0).call_timeout == 5.0
    assert Session(policy_set, call_timeout=None).call_timeout is None
    built = Session(policy_set)
    built._store, built._reader = object(), object()  # type: ignore[assignment]
    assert built.reconciler.call_timeout == DEFAULT_CALL_TIMEOUT
