"""One Reconciler, one pass: every command and the sidecar build it in one place.

The sidecar's Reconciler (built when the controller installs a policy set) bounds its
provider calls, and its tracker's, by the same `call_timeout` as the session's own
Reconciler, which `energyctl apply` and `plan` use; and the engine's code constructs a
Reconciler in exactly one place (`Session.make_reconciler`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.session import Session
from tests.engine.test_controller import Rig

ENGINE = Path(__file__).resolve().parents[2] / "engine"


async def test_the_sidecar_bounds_calls_as_apply_does(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    plain = rig._session

    def bounded_session(policy_set: Any) -> Session:
        session = plain(policy_set)
        session.call_timeout = 7.0  # as a real-time session sets its default
        return session

    rig.controller._factory = bounded_session
    c = rig.controller
    await c.start()
    try:
        assert c.reconciler is not None and c.session is not None
        applying = c.session.reconciler  # what `energyctl apply` runs its pass with
        assert c.reconciler is not applying
        assert c.reconciler.call_timeout == applying.call_timeout == 7.0
        tracking = c.reconciler.tracker.settings
        assert tracking.call_timeout == applying.tracker.settings.call_timeout == 7.0
    finally:
        await c.stop()
        assert c.session is not None
        await c.session.aclose()


def test_one_constructor_of_the_reconciler() -> None:
    calls = {
        str(path.relative_to(ENGINE)): len(re.findall(r"\bReconciler\(", path.read_text()))
        for path in ENGINE.rglob("*.py")
    }
    assert {path: n for path, n in calls.items() if n} == {"session.py": 1}
