"""The secret scrubber (`policies/redacting.py`) and where vendor text passes through it.

Registered: every resolved `SecretRef` and the alert settings' tokens. Scrubbed: a
`ProviderError`'s message and vendor code (the one door vendor error text comes in by),
the `raw` answers kept in quotes, receipts and statuses, and every log line.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.sidecar.alerting import AlertSettings
from engine.sidecar.logs import configure
from policies import redacting
from policies.loading import SecretMode, load
from policies.redacting import REDACTED, remember, scrub
from providers.base import OrderState, OrderStatus, PermanentError, Receipt
from tests.policies.conftest import POLICY, PROVIDERS

KEY = "canary-key-5b7d9f1a3c"


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    redacting.forget_all()
    yield
    redacting.forget_all()


def test_every_form_of_a_registered_value_is_scrubbed() -> None:
    remember(KEY, "s3cr+t/with spaces&more")
    quoted = "s3cr%2Bt%2Fwith%20spaces%26more s3cr%2Bt%2Fwith+spaces%26more"
    text = f"bad key {KEY}, {KEY.upper()}, ok? {quoted}"
    assert scrub(text) == f"bad key {REDACTED}, {REDACTED}, ok? {REDACTED} {REDACTED}"
    assert scrub(json.dumps({"k": 'a"b\\c-secret'})) == json.dumps({"k": 'a"b\\c-secret'})
    remember('a"b\\c-secret')
    assert REDACTED in scrub(json.dumps({"k": 'a"b\\c-secret'}))


def test_short_and_missing_values_are_not_registered() -> None:
    remember(None, "", "abc", "12345")
    assert scrub("abc 12345") == "abc 12345"


def test_vendor_errors_and_raw_answers_are_scrubbed() -> None:
    remember(KEY)
    error = PermanentError("itrx", f"invalid API-KEY {KEY}", vendor_code=f"E-{KEY}")
    assert KEY not in str(error) and KEY not in repr(error)
    assert error.vendor_code == f"E-{REDACTED}"
    receipt = Receipt(
        provider="itrx", client_order_id="ec-1", provider_order_id="9", receiver="T",
        energy=1, duration=1, raw={"echo": [KEY], KEY: {"x": f"k={KEY}"}},
    )  # fmt: skip
    assert KEY not in json.dumps(receipt.model_dump(mode="json"))
    status = OrderStatus(state=OrderState.FAILED, raw={"msg": KEY})
    assert status.raw == {"msg": REDACTED}


def test_resolved_policy_secrets_are_registered(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PROVIDERS)
    (tmp_path / "q.yaml").write_text(POLICY)
    (tmp_path / "tronsave.key").write_text("tronsave-file-secret\n")
    env = {"ITRX_API_KEY": KEY, "ITRX_API_SECRET": "itrx-secret-0042"}
    assert load(tmp_path, env=env, secrets=SecretMode.REQUIRED).ok
    assert scrub(f"{KEY} itrx-secret-0042 tronsave-file-secret") == " ".join([REDACTED] * 3)


def test_alert_tokens_are_registered() -> None:
    AlertSettings.from_env(
        {
            "ENERGYCTL_TELEGRAM_BOT_TOKEN": "123456:telegram-token",
            "ENERGYCTL_TELEGRAM_CHAT_ID": "42",
            "ENERGYCTL_ALERT_WEBHOOK_URL": "https://hooks.example/T0/B0/webhook-secret",
        }
    )
    assert REDACTED in scrub("123456:telegram-token")
    assert REDACTED in scrub("POST https://hooks.example/T0/B0/webhook-secret failed")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_lines_are_scrubbed(fmt: str) -> None:
    remember(KEY)
    stream = io.StringIO()
    root = logging.getLogger("energyctl")
    kept = (root.handlers[:], root.level, root.propagate)
    configure(fmt, "info", stream)
    try:
        logging.getLogger("energyctl.test").warning(
            "vendor said %s", KEY, extra={"event": "x", "data": {"detail": KEY}}
        )
    finally:
        root.handlers[:], root.level, root.propagate = kept
    assert KEY not in stream.getvalue() and REDACTED in stream.getvalue()
